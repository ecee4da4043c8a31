/**
 * Tollgate benchmark (issue 7: S1–S7; issue 3: first tools/call measurement).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench
 *
 * Boots a fresh database, real upstreams (server-everything for S2, a
 * 1,000-tool SDK server for S4) and Tollgate as a separate child process (the
 * compiled build by default), then loads every target and its baseline with
 * the same autocannon client in the same run. See bench/README.md for the
 * variables and what each scenario measures.
 */
import { ChildProcess, execSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConnection, createServer } from 'node:net';
import autocannon = require('autocannon');
import { sign } from 'jsonwebtoken';
import { Client as PgClient } from 'pg';
import { runMigrations } from '../src/database/data-source';
import { APIKeyToken } from '../src/api-keys/domain/api-key-token';
import { KeyHasher } from '../src/api-keys/domain/key-hasher';
import { signPayload } from '../src/plans/domain/webhook-signature';
import { topSelfTime } from './profile';
import { measureVerifyTiming, VerifyTiming } from './support/verify-timing';
import { LegTiming, measureUpstreamLeg } from './support/upstream-call';
import { AdmissionCost, measureAdmission } from './support/admission-cost';

const ROOT = resolve(__dirname, '..');
const RESULTS = join(__dirname, 'results');

const env = process.env;
const BASE_DATABASE_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DURATION_S = Number(env.BENCH_DURATION ?? 10);
const WARMUP_S = Number(env.BENCH_WARMUP ?? 2);
const CONNECTIONS = (env.BENCH_CONNECTIONS ?? '10,50').split(',').map(Number);
/** ADMIT: the per-call admission transaction alone, in-process. LEG: the upstream leg alone, in-process (SDK Client vs Tollgate's connector, SSE vs JSON upstream). */
const ALL_SCENARIOS = 'S1,S2,S3,S4,S5,S6,S7,LEG,ADMIT';
const SCENARIOS = new Set((env.BENCH_SCENARIOS ?? ALL_SCENARIOS).split(',').map((s) => s.trim().toUpperCase()));
/** `dist` (default: `npm run build` output, what production runs) or `ts` (ts-node transpile-only on src/). */
const SOURCE = env.BENCH_SOURCE ?? 'dist';
/** Set to 1 to run Tollgate under --cpu-prof (profile written to bench/results/profiles/, top functions printed). */
const CPU_PROF = env.BENCH_CPU_PROF === '1';
/** Set to 1 to run server-everything (the S2 upstream) under --cpu-prof too (profile in bench/results/profiles/). */
const UPSTREAM_PROF = env.BENCH_UPSTREAM_PROF === '1';
/**
 * Set to 1 to sample Tollgate with Linux `perf record` (kernel included) during every measured
 * target run: --cpu-prof samples wall time, so a syscall in which the process waits for a CPU
 * looks expensive there; perf counts CPU only. Needs `perf` on PATH and the right to profile.
 */
const PERF = env.BENCH_PERF === '1';
/** Write bench/results/latest.json (default on; off for profiling runs, whose numbers are skewed). */
const WRITE_RESULTS = (env.BENCH_WRITE ?? (CPU_PROF || PERF ? '0' : '1')) === '1';
/** Where to write the JSON (default bench/results/latest.json). */
const RESULTS_FILE = env.BENCH_RESULTS_FILE ?? join(RESULTS, 'latest.json');
const S3_CONNECTIONS = Number(env.BENCH_S3_CONNECTIONS ?? 50);
const S3_KEYS = Number(env.BENCH_S3_KEYS ?? 1_000_000);
const S4_CONNECTIONS = (env.BENCH_S4_CONNECTIONS ?? '1,10').split(',').map(Number);
const S4_TOOLS = Number(env.BENCH_S4_TOOLS ?? 1000);
const S6_DURATION_S = Number(env.BENCH_S6_DURATION ?? 60);
const S7_CONNECTIONS = Number(env.BENCH_S7_CONNECTIONS ?? 50);

const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef-0123456789';
const PEPPER = 'bench-pepper-0123456789abcdef';
const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789';
const PROTOCOL_VERSION = '2025-11-25';
const ECHO_MESSAGE = 'tollgate-bench';
/** Tenants: S1/S2/S6/S7 (everything), S4 (1,000 tools), S3/S5 (verify). */
const T_MAIN = 'bench';
const T_S4 = 'bench-s4';
const T_S3 = 'bench-s3';
/** A plan whose limits no bench run can reach: the bench measures the path, not the 429s. */
const HUGE = 1_000_000_000_000;
const BENCH_PLAN = {
  id: 'bench',
  name: 'Bench (limits out of reach)',
  rate_limits: { per_minute: HUGE, per_hour: HUGE },
  quotas: { requests_per_month: HUGE, tokens_per_month: HUGE },
  max_keys: 1_000_000,
  included_credits: HUGE,
};

interface Row {
  scenario: string;
  target: string;
  /** reference: measured for information (S1's trivial Nest controller), its ratio against the baseline. */
  role: 'baseline' | 'target' | 'reference';
  connections: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  ratio: number | null;
  p99OverheadMs: number | null;
  /** target p50 ÷ baseline p50 (S3: growth from 1k to 1M keys). */
  p50Ratio: number | null;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  /** Mean response size (headers and body), bytes. */
  bytesPerResponse: number;
  /** CPU time per request in the measured window, µs, per process (utime+stime from /proc; the load generator from process.cpuUsage()). */
  cpuUsPerReq: { tollgate: number | null; upstream: number | null; loadGenerator: number; postgres: number | null };
  /** Share of Tollgate's CPU spent in the kernel (system time), in %. */
  tollgateKernelPct: number | null;
  /**
   * The machine during the measured window, % of all CPU time (/proc/stat): `steal` is time the
   * hypervisor gave our vCPUs to someone else. With steal above a few %, absolute req/s say more
   * about the host than about Tollgate; compare ratios and CPU per request.
   */
  machine: { stealPct: number | null; idlePct: number | null };
}

interface Load {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** A new body per request (S3: a different key each time). */
  nextBody?: () => string;
  verifyBody: (body: string) => boolean;
}

interface Pids {
  tollgate: number | undefined;
  upstream: number | undefined;
}

interface Tollgate {
  base: string;
  child: ChildProcess;
  log: string;
  stop: () => Promise<void>;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((e) => log(`cleanup: ${(e as Error).message}`));
    cleanups.length = 0;
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void cleanup().finally(() => process.exit(143)));
  try {
    await run(cleanups);
  } finally {
    await cleanup();
  }
}

async function run(cleanups: (() => Promise<void>)[]): Promise<void> {
  log(`Tollgate bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}, load generator in this process`);
  const loadAtStart = loadavg();
  if (loadAtStart[0] > 0.5) log(`warning: 1-minute load average is ${loadAtStart[0].toFixed(2)} before the run; other work on this machine skews the numbers`);
  log(`scenarios ${[...SCENARIOS].join(',')}; connections ${CONNECTIONS.join(',')}; ${WARMUP_S} s warm-up + ${DURATION_S} s per run; Tollgate from ${SOURCE}${CPU_PROF ? ' (--cpu-prof)' : ''}`);

  // 1. A fresh database, migrated.
  const dbName = `tollgate_bench_${randomBytes(4).toString('hex')}`;
  const admin = new PgClient({ connectionString: BASE_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    log(`dropped database ${dbName}`);
  });
  const dbUrl = new URL(BASE_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const databaseUrl = dbUrl.toString();
  await runMigrations(databaseUrl);
  const db = new PgClient({ connectionString: databaseUrl });
  await db.connect();
  cleanups.push(() => db.end());
  log(`database ${dbName} created and migrated`);

  const workDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  cleanups.push(async () => rmSync(workDir, { recursive: true, force: true }));
  const plansFile = join(workDir, 'plans.json');
  writeFileSync(plansFile, JSON.stringify([BENCH_PLAN]));

  // 2. The upstreams.
  const upstreamPort = await freePort();
  const upstream = spawnChild(
    'server-everything',
    [
      ...(UPSTREAM_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'results', 'profiles')}`, '--cpu-prof-name=upstream.cpuprofile'] : []),
      join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'),
      'streamableHttp',
    ],
    { PORT: String(upstreamPort) },
    // It logs a line per request: let it write to /dev/null, not through a pipe into the load generator.
    'ignore',
  );
  // server-everything exits cleanly (and so writes its --cpu-prof profile) on SIGINT only.
  cleanups.push(() => stopChild(upstream, UPSTREAM_PROF ? 'SIGINT' : 'SIGTERM'));
  await waitForPort(upstreamPort, upstream, 20_000);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}/mcp`;
  log(`server-everything on ${upstreamUrl}`);

  let manyTools: ChildProcess | null = null;
  let manyToolsUrl = '';
  if (SCENARIOS.has('S4') || SCENARIOS.has('LEG')) {
    const port = await freePort();
    manyTools = spawnChild('many-tools', ['-r', 'ts-node/register/transpile-only', join(__dirname, 'support', 'many-tools-upstream.ts')], { PORT: String(port), TOOLS: String(S4_TOOLS) }, 'ignore');
    const child = manyTools;
    cleanups.push(() => stopChild(child));
    await waitForPort(port, manyTools, 30_000);
    manyToolsUrl = `http://127.0.0.1:${port}/mcp`;
    log(`many-tools upstream (${S4_TOOLS} tools + echo) on ${manyToolsUrl}`);
  }

  // Redis for S7: REDIS_URL, or a private redis-server on a free port.
  let redisUrl = env.REDIS_URL ?? null;
  if (SCENARIOS.has('S7') && !redisUrl) {
    const redisBin = whichSync('redis-server');
    if (redisBin) {
      const port = await freePort();
      const redis = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      cleanups.push(() => stopChild(redis));
      await waitForPort(port, redis, 10_000);
      redisUrl = `redis://127.0.0.1:${port}`;
      log(`redis-server (private) on ${redisUrl}`);
    } else {
      log('S7 skipped: no REDIS_URL and no redis-server on PATH');
      SCENARIOS.delete('S7');
    }
  }

  // 3. Tollgate, in its own process (and a second one with Redis for S7).
  if (SOURCE === 'dist' && !existsSync(join(ROOT, 'dist', 'src', 'main.js'))) {
    throw new Error('dist/src/main.js is missing: run `npm run build` first (npm run bench does)');
  }
  const profDir = join(RESULTS, 'profiles');
  if (CPU_PROF) {
    mkdirSync(profDir, { recursive: true });
    for (const f of readdirSync(profDir)) if (f.endsWith('.cpuprofile')) rmSync(join(profDir, f));
  }
  const tg = await startTollgate('tollgate', workDir, databaseUrl, plansFile, null, CPU_PROF ? profDir : null);
  cleanups.push(tg.stop);
  log(`Tollgate on ${tg.base} (log: ${tg.log})`);
  let tgRedis: Tollgate | null = null;
  if (SCENARIOS.has('S7')) {
    tgRedis = await startTollgate('tollgate-redis', workDir, databaseUrl, plansFile, redisUrl, null);
    cleanups.push(tgRedis.stop);
    log(`Tollgate with REDIS_URL on ${tgRedis.base} (log: ${tgRedis.log})`);
  }
  const idleRss = rssOf(tg.child.pid);

  // 4. Tenants on the bench plan (signed webhook), upstreams and keys through the management API.
  for (const tenant of [T_MAIN, T_S4, T_S3]) await switchPlan(tg.base, tenant, 'bench');
  const jwtFor = (tenant: string, roles: string[]) =>
    sign({ sub: `bench-${roles[0]}`, tenant_id: tenant, roles }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 7200 });
  const adminJwt = jwtFor(T_MAIN, ['admin']);
  await registerUpstream(tg.base, adminJwt, 'everything', upstreamUrl);
  const apiKey = await createKey(tg.base, adminJwt, 'bench', ['everything__*']);
  log(`tenants on plan "bench"; upstream registered as "everything"; key with scope everything__* created`);
  let s4Key = '';
  if (SCENARIOS.has('S4')) {
    const jwt4 = jwtFor(T_S4, ['admin']);
    await registerUpstream(tg.base, jwt4, 'many', manyToolsUrl);
    // 100 patterns, each matching 10 of the 1,000 tools: many__tool_000* … many__tool_099*.
    const patterns = Array.from({ length: 100 }, (_, i) => `many__tool_${String(i).padStart(3, '0')}*`);
    s4Key = await createKey(tg.base, jwt4, 'bench-s4', patterns);
    log(`S4: upstream "many" registered (${S4_TOOLS} tools), key with ${patterns.length} scope patterns`);
  }

  // 5. The direct baselines need a session: both upstreams are stateful.
  const sessionId = await initializeUpstreamSession(upstreamUrl);
  const manySession = manyToolsUrl ? await initializeUpstreamSession(manyToolsUrl) : '';

  const mcpHeaders = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PROTOCOL_VERSION,
  };
  const callBody = (tool: string) =>
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { message: ECHO_MESSAGE } } });
  const listBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
  const echoOk = (body: string) => body.includes(`Echo: ${ECHO_MESSAGE}`) && !body.includes('"isError":true') && !body.includes('"error":');
  const toolsOk = (first: string, last: string) => (body: string) => body.includes(`"${first}"`) && body.includes(`"${last}"`) && !body.includes('"error":');
  const lastTool = `tool_${String(S4_TOOLS - 1).padStart(4, '0')}`;
  const s1Target = (base: string): Load => ({ url: `${base}/api/v1/mcp/tools`, method: 'GET', headers: { 'x-api-key': apiKey }, verifyBody: (b) => b.includes('"everything__echo"') });
  const s2Target = (base: string): Load => ({ url: `${base}/mcp`, method: 'POST', headers: { ...mcpHeaders, 'x-api-key': apiKey }, body: callBody('everything__echo'), verifyBody: echoOk });
  const loads: Record<string, { label: string; load: Load }> = {
    'S1/baseline': {
      label: 'GET /bench/bare (bare Fastify JSON route, same app)',
      load: { url: `${tg.base}/bench/bare`, method: 'GET', headers: {}, verifyBody: (b) => b === '{"status":"ok"}' },
    },
    'S1/target': { label: 'GET /api/v1/mcp/tools (X-API-Key)', load: s1Target(tg.base) },
    // References, measured against the baseline: Nest's own floor (a route through Nest's router and
    // pipeline), and the bare route again with a body the size of the tool list (what the size costs).
    'S1/nest': {
      label: 'GET /health/live (trivial Nest controller, no guard)',
      load: { url: `${tg.base}/health/live`, method: 'GET', headers: {}, verifyBody: (b) => b.includes('"ok"') },
    },
    'S1/bare-list': {
      label: 'GET /bench/bare-list (bare route, 7.8 KB body)',
      load: { url: `${tg.base}/bench/bare-list`, method: 'GET', headers: {}, verifyBody: (b) => b.length > 7_000 && b.startsWith('{"data":[') },
    },
    'S2/baseline': {
      label: 'tools/call echo, direct to server-everything',
      load: { url: upstreamUrl, method: 'POST', headers: { ...mcpHeaders, 'mcp-session-id': sessionId }, body: callBody('echo'), verifyBody: echoOk },
    },
    'S2/target': { label: 'tools/call everything__echo via Tollgate /mcp', load: s2Target(tg.base) },
  };
  if (SCENARIOS.has('S4')) {
    loads['S4/baseline'] = {
      label: `tools/list direct to the ${S4_TOOLS}-tool upstream`,
      load: { url: manyToolsUrl, method: 'POST', headers: { ...mcpHeaders, 'mcp-session-id': manySession }, body: listBody, verifyBody: toolsOk('tool_0000', lastTool) },
    };
    loads['S4/target'] = {
      label: `tools/list via Tollgate /mcp (100 patterns, ${S4_TOOLS} tools)`,
      load: { url: `${tg.base}/mcp`, method: 'POST', headers: { ...mcpHeaders, 'x-api-key': s4Key }, body: listBody, verifyBody: toolsOk('many__tool_0000', `many__${lastTool}`) },
    };
  }
  if (tgRedis) {
    loads['S7/S1'] = { label: 'S1 target, Tollgate with REDIS_URL', load: s1Target(tgRedis.base) };
    loads['S7/S2'] = { label: 'S2 target, Tollgate with REDIS_URL', load: s2Target(tgRedis.base) };
  }

  // Sanity: one request of each, before loading anything.
  for (const [name, { load }] of Object.entries(loads)) {
    if (!SCENARIOS.has(name.split('/')[0]) && !(name.startsWith('S7') && SCENARIOS.has('S7'))) continue;
    const res = await fetch(load.url, { method: load.method, headers: load.headers, body: load.body });
    const text = await res.text();
    if (res.status !== 200 || !load.verifyBody(text)) throw new Error(`${name}: unexpected response ${res.status} ${text.slice(0, 500)}`);
  }
  log('sanity requests OK\n');

  const rows: Row[] = [];
  const pids: Pids = { tollgate: tg.child.pid, upstream: upstream.pid };
  const pair = async (scenario: string, b: { label: string; load: Load }, t: { label: string; load: Load }, connections: number, p: Pids, pb: Pids = p) => {
    const rb = await measure(scenario, b.label, 'baseline', b.load, connections, pb);
    const rt = compared(await measure(scenario, t.label, 'target', t.load, connections, p), rb);
    rb.ratio = 1;
    rows.push(rb, rt);
    return [rb, rt];
  };

  // S6 first: idle RSS, then 60 s of S2 load (which is also everyone's warm-up), then RSS again.
  let memory: Record<string, number | null> = { idle: idleRss };
  if (SCENARIOS.has('S6')) {
    log(`S6: ${S6_DURATION_S} s of S2 load at c=50`);
    const before = process.cpuUsage();
    const r = await cannon(loads['S2/target'].load, 50, S6_DURATION_S);
    process.cpuUsage(before);
    const after = rssOf(tg.child.pid);
    await sleep(5_000);
    memory = { ...memory, afterS2Load60s: after, after5sSettle: rssOf(tg.child.pid), s6Requests: r.requests.total, s6ReqPerSec: r.requests.average, s6Bad: r.non2xx + r.errors + r.timeouts + r.mismatches };
    log(`S6: RSS ${fmtMb(idleRss)} idle → ${fmtMb(after)} after ${S6_DURATION_S} s of S2 (${r.requests.total} calls, ${r.requests.average.toFixed(0)}/s) → ${fmtMb(memory.after5sSettle)} 5 s later`);
  }

  for (const scenario of ['S1', 'S2']) {
    if (!SCENARIOS.has(scenario)) continue;
    for (const c of CONNECTIONS) {
      const [rb] = await pair(scenario, loads[`${scenario}/baseline`], loads[`${scenario}/target`], c, pids);
      if (scenario !== 'S1') continue;
      for (const ref of [loads['S1/nest'], loads['S1/bare-list']]) {
        rows.push(compared(await measure(scenario, ref.label, 'reference', ref.load, c, pids), rb));
      }
    }
  }
  if (SCENARIOS.has('S4')) {
    for (const c of S4_CONNECTIONS) await pair('S4', loads['S4/baseline'], loads['S4/target'], c, { tollgate: tg.child.pid, upstream: manyTools?.pid });
  }
  if (tgRedis) {
    const pr = { tollgate: tgRedis.child.pid, upstream: upstream.pid };
    for (const s of ['S1', 'S2']) {
      await pair('S7', { label: `${s} target, Tollgate without Redis`, load: loads[`${s}/target`].load }, loads[`S7/${s}`], S7_CONNECTIONS, pr, pids);
    }
  }
  memory.afterAllHttpLoads = rssOf(tg.child.pid);

  let admissionCost: AdmissionCost[] = [];
  if (SCENARIOS.has('ADMIT')) {
    admissionCost = await measureAdmission(databaseUrl, plansFile, T_MAIN, '00000000-0000-4000-8000-000000000001').catch((err: Error) => {
      log(`ADMIT failed: ${err.message}`);
      return [];
    });
  }

  let leg: LegTiming[] = [];
  if (SCENARIOS.has('LEG') && manyToolsUrl) {
    leg = await measureUpstreamLeg(upstreamUrl, manyToolsUrl).catch((err: Error) => {
      log(`LEG failed: ${err.message}`);
      return [];
    });
    log('\nupstream leg alone (in this process, 4,000 echo calls at concurrency 10):');
    for (const l of leg) log(`  ${l.label.padEnd(62)} ${String(l.cpuUsPerCall).padStart(5)} µs CPU/call  ${String(l.callsPerSec).padStart(6)} calls/s`);
  }

  // S3 (and S5 on the same table): verify with 1,000 real keys, then with 1,000,000 rows.
  let timing: { at1k?: VerifyTiming; at1M?: VerifyTiming } = {};
  const s3: Record<string, unknown> = {};
  if (SCENARIOS.has('S3') || SCENARIOS.has('S5')) {
    const hasher = new KeyHasher(PEPPER);
    const realKeys = await insertRealKeys(db, hasher, T_S3, 1000);
    const unknownKey = () => APIKeyToken.generate('tg', 'live').value;
    const verifyJwt = jwtFor(T_S3, ['service']);
    const verifyLoad = (which: 'valid' | 'unknown'): Load => {
      let i = 0;
      return {
        url: `${tg.base}/api/v1/keys/verify`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${verifyJwt}` },
        nextBody: () => JSON.stringify({ key: which === 'valid' ? realKeys[i++ % realKeys.length] : unknownKey() }),
        verifyBody: which === 'valid' ? (b) => b.includes('"valid":true') : (b) => b.includes('"code":"invalid_key"'),
      };
    };
    const check = await postJson(`${tg.base}/api/v1/keys/verify`, { key: realKeys[0] }, { authorization: `Bearer ${verifyJwt}` });
    if (check.status !== 200 || !check.text.includes('"valid":true')) throw new Error(`verify sanity: ${check.status} ${check.text}`);
    const runs: Record<string, Row> = {};
    const s3runs = async (size: string) => {
      if (!SCENARIOS.has('S3')) return;
      for (const which of ['valid', 'unknown'] as const) {
        runs[`${which}@${size}`] = await measure('S3', `verify, ${which === 'valid' ? '1,000 valid keys in rotation (cache warm)' : 'fresh unknown key per request (index probe)'}, ${size} keys in table`, 'target', verifyLoad(which), S3_CONNECTIONS, pids);
      }
    };
    await s3runs('1k');
    if (SCENARIOS.has('S5')) timing.at1k = await measureVerifyTiming(databaseUrl, PEPPER, realKeys[0]);
    const t0 = Date.now();
    await bulkInsertFiller(db, hasher, S3_KEYS - realKeys.length);
    const count = Number((await db.query('SELECT count(*) AS n FROM api_keys')).rows[0].n);
    s3.bulkInsertSeconds = Math.round((Date.now() - t0) / 100) / 10;
    s3.keysInTable = count;
    log(`S3: ${count} keys in api_keys (bulk insert + VACUUM ANALYZE in ${s3.bulkInsertSeconds} s)`);
    await s3runs('1M');
    if (SCENARIOS.has('S5')) timing.at1M = await measureVerifyTiming(databaseUrl, PEPPER, realKeys[0]);
    if (SCENARIOS.has('S3')) {
      for (const which of ['valid', 'unknown']) {
        const b = runs[`${which}@1k`];
        const t = runs[`${which}@1M`];
        b.role = 'baseline';
        b.ratio = 1;
        rows.push(b, compared(t, b));
        s3[`${which}P50Growth`] = t.p50Ratio;
      }
    }
  } else {
    timing = {};
  }

  log('');
  printTable(rows);
  log('\nratio: target req/s ÷ baseline req/s; p50×: target p50 ÷ baseline p50 (S3: 1M-key run ÷ 1k-key run; S7: with Redis ÷ without)');
  if (SCENARIOS.has('S6')) log(`\nS6 Tollgate RSS: ${fmtMb(memory.idle)} idle, ${fmtMb(memory.afterS2Load60s)} after ${S6_DURATION_S} s of S2 at c=50, ${fmtMb(memory.after5sSettle)} 5 s later, ${fmtMb(memory.afterAllHttpLoads)} after every HTTP scenario`);
  for (const [size, t] of Object.entries(timing)) {
    if (!t) continue;
    log(`\nS5 (${size === 'at1k' ? '1,000' : `${s3.keysInTable ?? '?'}`} keys in table), median µs of KeyVerifier.verify() in-process, ${t.iterations.warm} warm / ${t.iterations.cold} cold samples each:`);
    log(`  warm cache: valid ${t.warm.valid} µs, unknown ${t.warm.unknown} µs, difference ${round2(t.warm.unknown - t.warm.valid)} µs`);
    log(`  cache off : valid ${t.cold.valid} µs, unknown ${t.cold.unknown} µs, difference ${round2(t.cold.unknown - t.cold.valid)} µs`);
    log(`  malformed / bad checksum (no hash, no lookup): ${t.malformed} µs`);
  }

  if (admissionCost.length) {
    log('\nadmission transaction alone (CallAdmission.admit, one tenant, in-process, price 1):');
    for (const a of admissionCost) log(`  concurrency ${String(a.concurrency).padStart(2)}: ${String(a.admitsPerSec).padStart(5)} admissions/s, p50 ${a.p50Ms} ms, p99 ${a.p99Ms} ms`);
  }
  if (leg.length) {
    log('\nupstream leg alone (in-process, 4,000 echo calls at concurrency 10; CPU of the caller only):');
    for (const l of leg) log(`  ${l.label.padEnd(62)} ${String(l.cpuUsPerCall).padStart(5)} µs CPU/call  ${String(l.callsPerSec).padStart(6)} calls/s`);
  }

  if (WRITE_RESULTS) {
    mkdirSync(RESULTS, { recursive: true });
    const out = {
      generatedAt: new Date().toISOString(),
      commit: env.BENCH_COMMIT ?? gitCommit(),
      machine: { loadAverageAtStart: loadAtStart.map((x) => Math.round(x * 100) / 100), cpus: cpus().length, model: cpus()[0]?.model ?? null, node: process.version, loadGenerator: 'autocannon in the bench process, same machine' },
      settings: { durationS: DURATION_S, warmupS: WARMUP_S, connections: CONNECTIONS, s3Connections: S3_CONNECTIONS, s4Connections: S4_CONNECTIONS, s6DurationS: S6_DURATION_S, s7Connections: S7_CONNECTIONS, tollgate: SOURCE, protocolVersion: PROTOCOL_VERSION, scenarios: [...SCENARIOS] },
      notes: {
        plan: 'every bench tenant is switched to a PLANS_FILE plan "bench" (limits 1e12) with a signed subscription.updated webhook; rate limits, quota and credit admission still run on every request',
        S1: 'baseline is GET /bench/bare, a bare Fastify JSON route added to the same app by bench/support/with-bare-route.js (Fastify-level hooks only: request id, metrics, the request log line; nothing of Nest); earlier runs used GET /health/live, a trivial Nest controller',
        S2: 'baseline is server-everything direct (one shared mcp-session-id, SSE responses); target is Tollgate /mcp (stateless, JSON) forwarding over its pooled upstream session',
        S3: 'POST /api/v1/keys/verify with a service JWT; "valid" rotates over 1,000 real keys (served from the key cache), "unknown" sends a fresh well-formed key per request (always a PostgreSQL index probe); baseline = 1k rows, target = 1M rows',
        S4: 'tools/list via /mcp with a key of 100 patterns (each matches 10 tools) over 1,000 upstream tools, vs the same tools/list sent straight to the upstream',
        S5: 'in-process KeyVerifier.verify() on the bench database (see bench/support/verify-timing.ts)',
        S7: 'second Tollgate process with REDIS_URL (throttler storage in Redis) on the same database; baseline is the first process (in-memory throttler)',
      },
      tollgateRssBytes: memory,
      s3,
      s5: timing,
      upstreamLeg: leg,
      admission: admissionCost,
      rows,
    };
    writeFileSync(RESULTS_FILE, `${JSON.stringify(out, null, 2)}\n`);
    log(`wrote ${RESULTS_FILE}`);
  }

  if (CPU_PROF) {
    await tg.stop();
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (!files.length) throw new Error('no .cpuprofile written');
    const file = join(profDir, files[0]);
    log(`\nCPU profile: ${file}\nTop self-time functions in Tollgate (whole run: start-up, set-up and load):`);
    for (const f of topSelfTime(file, 25)) log(`  ${f.percent.toFixed(1).padStart(5)} %  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.location}`);
  }
}

async function startTollgate(name: string, workDir: string, databaseUrl: string, plansFile: string, redisUrl: string | null, profDir: string | null): Promise<Tollgate> {
  const port = await freePort();
  const dataDir = join(workDir, name);
  mkdirSync(dataDir, { recursive: true });
  // The flags of `npm start` and the Dockerfile.
  const nodeArgs = [
    '--max-semi-space-size=32',
    ...(env.BENCH_NODE_FLAGS ? env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean) : []),
    ...(PERF ? ['--perf-basic-prof-only-functions'] : []),
    ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
  ];
  // main.js (or main.ts) started through bench/support/with-bare-route.js, which adds S1's baseline route.
  const main = SOURCE === 'dist' ? join(ROOT, 'dist', 'src', 'main.js') : join(ROOT, 'src', 'main.ts');
  const entry = [...(SOURCE === 'dist' ? [] : ['-r', 'ts-node/register/transpile-only']), join(__dirname, 'support', 'with-bare-route.js'), main];
  const logFile = join(dataDir, 'tollgate.log');
  const extra: Record<string, string> = {
    // Not production (the bench signs its JWTs with JWT_SECRET) but not development either: JSON logs, as in production, not pino-pretty.
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    // The product's default: one JSON line per request (BENCH_LOG_LEVEL=warn measures without them).
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'log',
    JWT_SECRET,
    API_KEY_PEPPER: PEPPER,
    UPSTREAM_ALLOWED_HOSTS: '127.0.0.1,localhost',
    MIGRATIONS_RUN: 'false',
    DEMO: 'false',
    PLANS_FILE: plansFile,
    BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET,
  };
  const childEnv = { ...process.env, ...extra };
  delete childEnv.REDIS_URL;
  if (redisUrl) childEnv.REDIS_URL = redisUrl;
  const child = spawnChild(name, [...nodeArgs, ...entry], childEnv, 'pipe', logFile, true);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopChild(child);
  };
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/health/ready`, child, 60_000, logFile);
  return { base, child, log: logFile, stop };
}

/** A signed `subscription.updated` (POST /api/v1/billing/webhook), as the billing backend sends it. */
async function switchPlan(base: string, tenant: string, plan: string): Promise<void> {
  const body = JSON.stringify({ id: `bench-${tenant}-${randomBytes(4).toString('hex')}`, type: 'subscription.updated', data: { tenant_id: tenant, plan, status: 'active' } });
  const signature = signPayload(WEBHOOK_SECRET, Math.floor(Date.now() / 1000), body);
  const res = await fetch(`${base}/api/v1/billing/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'tollgate-signature': signature }, body });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('processed')) throw new Error(`plan switch for ${tenant}: ${res.status} ${text}`);
}

async function registerUpstream(base: string, jwt: string, name: string, url: string): Promise<void> {
  const reg = await postJson(`${base}/api/v1/mcp/servers`, { name, url }, { authorization: `Bearer ${jwt}` });
  if (reg.status !== 201) throw new Error(`register upstream ${name}: ${reg.status} ${reg.text}`);
}

async function createKey(base: string, jwt: string, name: string, patterns: string[]): Promise<string> {
  const res = await postJson(`${base}/api/v1/api-keys`, { name, permission_scope: { mcp_tool_ids: patterns } }, { authorization: `Bearer ${jwt}` });
  if (res.status !== 201) throw new Error(`create key ${name}: ${res.status} ${res.text}`);
  return (res.json as { token: string }).token;
}

const SCOPE_JSON = JSON.stringify({ agent_ids: [], flow_ids: [], mcp_tool_ids: ['*'], vector_store_ids: [], deny: { agent_ids: [], flow_ids: [], mcp_tool_ids: [], vector_store_ids: [] } });

/** `n` real keys (token + peppered hash, as APIKeySecrets.mint() makes them), inserted directly. */
async function insertRealKeys(db: PgClient, hasher: KeyHasher, tenant: string, n: number): Promise<string[]> {
  await db.query(`INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING`, [tenant]);
  const tokens = Array.from({ length: n }, () => APIKeyToken.generate('tg', 'live'));
  await db.query(
    `INSERT INTO api_keys (id, tenant_id, user_id, name, key_hash, start, permission_scope, created_by)
     SELECT gen_random_uuid(), $1, 'bench-user', 'real-' || t.ord, t.hash, t.start, $4::jsonb, 'bench'
     FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(hash, start, ord)`,
    [tenant, tokens.map((t) => hasher.hash(t.value)), tokens.map((t) => t.start), SCOPE_JSON],
  );
  return tokens.map((t) => t.value);
}

/** Filler rows with valid-looking hashes (sha256 of a counter, never a real secret's HMAC) over 1,000 tenants. */
async function bulkInsertFiller(db: PgClient, _hasher: KeyHasher, n: number): Promise<void> {
  await db.query(`INSERT INTO tenants (id) SELECT 'filler-' || i FROM generate_series(0, 999) i ON CONFLICT DO NOTHING`);
  const chunk = 250_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await db.query(
      `INSERT INTO api_keys (id, tenant_id, user_id, name, key_hash, start, permission_scope, created_by, created_at, updated_at)
       SELECT gen_random_uuid(), 'filler-' || (i % 1000), 'u' || (i % 7), 'filler-' || i,
              encode(sha256(('tollgate-bench-filler-' || i)::bytea), 'hex'), 'tg_live_' || substr(md5(i::text), 1, 4),
              $3::jsonb, 'bench', now() - (i || ' seconds')::interval, now()
       FROM generate_series($1::int, $2::int) i`,
      [from, to, SCOPE_JSON],
    );
    log(`S3: inserted filler keys ${from}–${to}`);
  }
  await db.query('VACUUM ANALYZE api_keys');
  // The bulk load leaves ~300 MB of dirty pages: without a checkpoint here, the checkpointer and the
  // background writer flush them during the 1M-row runs, and their CPU lands in the pg column there.
  await db.query('CHECKPOINT').catch((err: Error) => log(`S3: CHECKPOINT refused (${err.message}); PostgreSQL may still be flushing the bulk load during the 1M-row runs`));
}

async function measure(scenario: string, label: string, role: Row['role'], load: Load, connections: number, pids: Pids): Promise<Row> {
  if (WARMUP_S > 0) await cannon(load, connections, WARMUP_S);
  const before = { tollgate: cpuMsOf(pids.tollgate), tollgateSplit: cpuSplitMsOf(pids.tollgate), upstream: cpuMsOf(pids.upstream), postgres: postgresCpuMs(), self: process.cpuUsage(), machine: machineTicks() };
  const perf = PERF && role === 'target' && pids.tollgate ? perfRecord(pids.tollgate, `${scenario}-c${connections}`) : null;
  const r = await cannon(load, connections, DURATION_S);
  const tollgateSplit = cpuSplitMsOf(pids.tollgate);
  const self = process.cpuUsage(before.self);
  const machine = machineShare(before.machine, machineTicks());
  const perReq = (ms: number | null, prev: number | null) =>
    ms === null || prev === null || !r.requests.total ? null : Math.round(((ms - prev) * 1000) / r.requests.total);
  const row: Row = {
    scenario,
    target: label,
    role,
    connections,
    reqPerSec: r.requests.average,
    p50Ms: r.exact.p50,
    p99Ms: r.exact.p99,
    ratio: null,
    p99OverheadMs: null,
    p50Ratio: null,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    mismatches: r.mismatches,
    bytesPerResponse: r.requests.total ? Math.round(Number(r.throughput.total ?? 0) / r.requests.total) : 0,
    cpuUsPerReq: {
      tollgate: perReq(cpuMsOf(pids.tollgate), before.tollgate),
      upstream: perReq(cpuMsOf(pids.upstream), before.upstream),
      loadGenerator: Math.round((self.user + self.system) / Math.max(1, r.requests.total)),
      postgres: perReq(postgresCpuMs(), before.postgres),
    },
    tollgateKernelPct: kernelShare(before.tollgateSplit, tollgateSplit),
    machine,
  };
  const bad = row.non2xx + row.errors + row.timeouts + row.mismatches;
  log(
    `${scenario} ${role.padEnd(8)} c=${String(connections).padEnd(3)} ${row.reqPerSec.toFixed(0).padStart(6)} req/s  p50 ${row.p50Ms} ms  p99 ${row.p99Ms} ms  ${label}` +
      `  (${row.requests} requests${bad ? `; non2xx ${row.non2xx}, errors ${row.errors}, timeouts ${row.timeouts}, bad bodies ${row.mismatches}` : ', all 2xx with the expected body'})` +
      (row.machine.stealPct !== null && row.machine.stealPct >= 5 ? `  [steal ${row.machine.stealPct} %: the host took CPU from this VM]` : ''),
  );
  if (perf) await perf;
  return row;
}

/** Share of a process's CPU spent in the kernel (stime ÷ (utime + stime)) between two readings, in %. */
function kernelShare(a: [number, number] | null, b: [number, number] | null): number | null {
  if (!a || !b) return null;
  const user = b[0] - a[0];
  const sys = b[1] - a[1];
  return user + sys > 0 ? Math.round((1000 * sys) / (user + sys)) / 10 : null;
}

/**
 * `perf record` on one process for the measured window, then the split by DSO (kernel, V8 and
 * libc in the node binary, JIT-compiled JavaScript) and the top symbols. The data file stays in
 * bench/results/profiles/ for `perf report -i`.
 */
async function perfRecord(pid: number, name: string): Promise<void> {
  const dir = join(RESULTS, 'profiles');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.perf.data`);
  const rec = spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', file, '--', 'sleep', String(DURATION_S)], { stdio: 'ignore' });
  const code = await new Promise<number | null>((res) => {
    rec.once('error', () => res(-1));
    rec.once('exit', res);
  });
  if (code !== 0) return log(`perf record failed (exit ${code}): is perf installed, and may this user profile other processes?`);
  const report = (sort: string, n: number) =>
    execSync(`perf report -i ${file} --no-children --sort ${sort} --stdio -g none 2>/dev/null`, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .slice(0, n);
  log(`perf (${file}), Tollgate's CPU by DSO during ${name}:`);
  for (const l of report('dso', 6)) log(`  ${l.trim()}`);
  log('top symbols ([k] kernel, [.] user space; JS:* are JavaScript functions):');
  for (const l of report('sym', 20)) log(`  ${l.trim()}`);
}

/** The aggregate `cpu` line of /proc/stat: [idle, steal, total] in ticks; null off Linux. */
function machineTicks(): [number, number, number] | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already counted in user)
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return [cpu[3] + cpu[4], cpu[7] ?? 0, total];
  } catch {
    return null;
  }
}

function machineShare(a: [number, number, number] | null, b: [number, number, number] | null): Row['machine'] {
  if (!a || !b || b[2] <= a[2]) return { stealPct: null, idlePct: null };
  const pct = (i: number) => Math.round((1000 * (b[i] - a[i])) / (b[2] - a[2])) / 10;
  return { idlePct: pct(0), stealPct: pct(1) };
}

let clockTicks: number | null = null;
/** [utime, stime] of a process, in ms (Linux /proc). */
function cpuSplitMsOf(pid: number | undefined): [number, number] | null {
  if (!pid) return null;
  try {
    clockTicks ??= Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
    return [(Number(fields[11]) * 1000) / clockTicks, (Number(fields[12]) * 1000) / clockTicks];
  } catch {
    return null;
  }
}

/** utime + stime of a process, in ms (Linux /proc). */
function cpuMsOf(pid: number | undefined): number | null {
  const split = cpuSplitMsOf(pid);
  return split ? split[0] + split[1] : null;
}

/**
 * utime + stime of every process named `postgres` on the machine, in ms: the
 * server's share of a request (admission, verify probes). On a shared machine
 * it also counts other users' PostgreSQL work, so read it as an upper bound.
 */
function postgresCpuMs(): number | null {
  try {
    let total = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      if (!stat.includes('(postgres)')) continue;
      total += cpuMsOf(Number(entry)) ?? 0;
    }
    return total;
  } catch {
    return null;
  }
}

/** autocannon's histogram keeps whole milliseconds; latencies are also taken from its per-response event, in µs precision. */
function cannon(load: Load, connections: number, duration: number): Promise<autocannon.Result & { exact: { p50: number; p99: number } }> {
  return new Promise((resolveRun, reject) => {
    let times = new Float64Array(1 << 16);
    let n = 0;
    const next = load.nextBody;
    const instance = autocannon(
      {
        url: load.url,
        method: load.method,
        headers: load.headers,
        body: load.body,
        connections,
        duration,
        timeout: 10,
        verifyBody: load.verifyBody,
        ...(next ? { requests: [{ method: load.method, setupRequest: (req: Record<string, unknown>) => ({ ...req, body: next() }) }] } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        const sorted = times.subarray(0, n).sort();
        const at = (q: number) => (n ? Math.round(sorted[Math.min(n - 1, Math.floor(q * n))] * 100) / 100 : 0);
        resolveRun(Object.assign(result, { exact: { p50: at(0.5), p99: at(0.99) } }));
      },
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status < 200 || status >= 300) return;
      if (n === times.length) {
        const grown = new Float64Array(times.length * 2);
        grown.set(times);
        times = grown;
      }
      times[n++] = ms;
    });
  });
}

/** `row` with its ratio, p50 ratio and p99 overhead against `baseline` (measured in the same run). */
function compared(row: Row, baseline: Row): Row {
  row.ratio = baseline.reqPerSec > 0 ? row.reqPerSec / baseline.reqPerSec : null;
  row.p50Ratio = baseline.p50Ms > 0 ? round2(row.p50Ms / baseline.p50Ms) : null;
  row.p99OverheadMs = round2(row.p99Ms - baseline.p99Ms);
  return row;
}

function printTable(rows: Row[]): void {
  const header = ['scenario', 'target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'p50×', 'p99 +ms', 'CPU µs/req TG/up/gen/pg', 'TG sys %', 'non-2xx/err/bad', 'steal/idle %'];
  const lines = rows.map((r) => [
    `${r.scenario} ${r.role}`,
    r.target,
    String(r.connections),
    r.reqPerSec.toFixed(0),
    String(r.p50Ms),
    String(r.p99Ms),
    r.ratio === null ? '' : r.ratio.toFixed(2),
    r.p50Ratio === null ? '' : r.p50Ratio.toFixed(2),
    r.p99OverheadMs === null ? '' : r.p99OverheadMs.toFixed(1),
    `${r.cpuUsPerReq.tollgate ?? '?'}/${r.cpuUsPerReq.upstream ?? '?'}/${r.cpuUsPerReq.loadGenerator}/${r.cpuUsPerReq.postgres ?? '?'}`,
    r.tollgateKernelPct === null ? '?' : String(r.tollgateKernelPct),
    `${r.non2xx}/${r.errors + r.timeouts}/${r.mismatches}`,
    r.machine.stealPct === null ? '?' : `${r.machine.stealPct}/${r.machine.idlePct}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  log(fmt(header));
  log(`|${widths.map((w, i) => (i >= 2 ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`);
  for (const l of lines) log(fmt(l));
}

// ---------------------------------------------------------------- helpers

async function initializeUpstreamSession(url: string): Promise<string> {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'tollgate-bench', version: '0.1.0' } },
    }),
  });
  const text = await init.text();
  const sessionId = init.headers.get('mcp-session-id');
  if (init.status !== 200 || !sessionId) throw new Error(`upstream initialize: ${init.status} ${text.slice(0, 300)}`);
  const negotiated = /"protocolVersion":"([^"]+)"/.exec(text)?.[1];
  if (negotiated !== PROTOCOL_VERSION) throw new Error(`upstream negotiated ${negotiated}, not ${PROTOCOL_VERSION}`);
  const notified = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await notified.text();
  if (notified.status !== 202) throw new Error(`upstream notifications/initialized: ${notified.status}`);
  return sessionId;
}

async function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

function spawnChild(name: string, args: string[], extraEnv: Record<string, string | undefined>, stdio: 'ignore' | 'pipe', logFile?: string, replaceEnv = false): ChildProcess {
  // A log file is handed to the child as its stdout: piped through this process (busy generating load),
  // the pipe filled up and Tollgate's logger spent a quarter of its CPU retrying EAGAIN.
  const out = logFile ? openSync(logFile, 'a') : null;
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: replaceEnv ? extraEnv : { ...process.env, ...extraEnv },
    stdio: ['ignore', out ?? stdio, out ?? stdio],
  });
  if (out !== null) closeSync(out);
  child.once('exit', (code, signal) => {
    if (code && code !== 0) log(`${name} exited with ${code ?? signal}`);
  });
  return child;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill(signal);
  });
}

function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => done(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`child exited with ${child.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((done) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`Tollgate exited with ${child.exitCode} during start-up; see ${logFile}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not yet listening
    }
    await sleep(200);
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms; see ${logFile}`);
}

function rssOf(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function whichSync(bin: string): string | null {
  try {
    return execSync(`command -v ${bin}`, { encoding: 'utf8', shell: '/bin/sh' }).trim() || null;
  } catch {
    return null;
  }
}

function fmtMb(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(0)} MB`;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function gitCommit(): string | null {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain -- src migrations', { cwd: ROOT, encoding: 'utf8' }).trim() ? '+dirty' : '';
    return `${head}${dirty}`;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
