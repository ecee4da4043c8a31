import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { sign } from 'jsonwebtoken';
import { APIKeyToken } from '../../src/api-keys/domain/api-key-token';
import { AuthEventsRecorder } from '../../src/auth/auth-events.recorder';
import { PROBLEM_STATUS } from '../../src/shared/http/problem-status';
import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { createTestApp, TestApp } from '../support/create-test-app';
import { TEST_JWT_SECRET } from '../support/env';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';

/**
 * Issue 8 §5: property-based bad input (fast-check) against every route the
 * app serves (listed from its own OpenAPI document): malformed JSON bodies,
 * wrong types per known field, huge strings, deep nesting, prototype-pollution
 * keys, malformed query strings, odd headers, random path params, random and
 * near-miss API keys and JWTs, random JSON-RPC messages to /mcp.
 *
 * For every request: no 5xx (except the documented 502/504 of a tool call the
 * upstream itself failed), every refusal is problem+json with a code from
 * PROBLEM_STATUS (or, on /mcp, a well-formed JSON-RPC error), no unhandled
 * rejection, and a refused request changes no row of the tenant (api_keys,
 * mcp_servers, audit_events, credit_transactions, quota_counters, plus
 * credit_accounts and tool_prices) beyond the documented refusal audits.
 *
 * Deterministic: FUZZ_SEED (default below) seeds every property; a failure
 * prints the seed, the path and the counterexample. FUZZ_SCALE multiplies runs.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_127);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

/**
 * Audit events a refusal may write (read from the code):
 * - auth.failed / authz.denied: APIKeyAuthGuard, JwtAuthGuard, RolesGuard (AuthEventsRecorder);
 * - mcp_tool.call_denied: a tool outside the key's scope (McpGatewayService.authorize);
 * - mcp_tool.call_refused: quota or credits refused (McpGatewayService.callTool);
 * - mcp_tool.call_failed: the upstream failed the call; quota released and price refunded.
 */
const REFUSAL_AUDITS = ['auth.failed', 'authz.denied', 'mcp_tool.call_denied', 'mcp_tool.call_refused', 'mcp_tool.call_failed'];
/** Codes of a tool call the upstream failed: documented 502/504, released and refunded (not a Tollgate 5xx). */
const UPSTREAM_CODES = new Set(['upstream_error', 'upstream_timeout']);
const WEBHOOK_SECRET = 'fuzz-webhook-secret-0123456789abcdef';
const MCP_ACCEPT = 'application/json, text/event-stream';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Auth = 'management' | 'agent' | 'public';

interface Route {
  method: Method;
  /** OpenAPI template, e.g. /api/v1/api-keys/{id} */
  path: string;
  auth: Auth;
  params: string[];
  query: string[];
  /** Known top-level body fields (from the request schema), empty when none. */
  fields: string[];
  hasBody: boolean;
}

interface Req {
  method: Method;
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** What the response is checked against. */
  route: Route;
}

interface Res {
  status: number;
  headers: Record<string, unknown>;
  text: string;
  body: any;
}

/* ------------------------------------------------------------------------ */
/* Arbitraries                                                               */
/* ------------------------------------------------------------------------ */

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const unicode = fc.string({ unit: 'binary', maxLength: 40 });
const grapheme = fc.string({ unit: 'grapheme', maxLength: 20 });
const hugeString = fc.integer({ min: 1_000, max: 200_000 }).chain((n) => fc.constantFrom('a', 'é', '💥', '\u0000', '"', '\\').map((c) => c.repeat(n)));
const oddString = fc.oneof(
  { weight: 3, arbitrary: printable },
  { weight: 2, arbitrary: unicode },
  { weight: 1, arbitrary: grapheme },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'null', 'undefined', 'NaN', '-1', '1e309', '../../etc/passwd', '%00', "' OR 1=1 --", '${7*7}', '<script>', '\u202e', '\ud800') },
);
const oddNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 0.5, -0));

/** encodeURIComponent that survives lone surrogates (they become U+FFFD). */
function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
}

function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
function deepObject(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** A value of the wrong (or a surprising) type for some field. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  oddNumber,
  fc.boolean(),
  fc.constant(null),
  oddString,
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  fc.dictionary(oddString.filter((s) => s.length < 50), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Raw JSON-ish text: what a broken or hostile client sends. */
function malformedBody(fields: string[]): fc.Arbitrary<string> {
  const known = fields.length > 0 ? fields : ['name'];
  return fc.oneof(
    // Any JSON value at all.
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    // A plausible object with each known field of a random wrong type.
    {
      weight: 6,
      arbitrary: fc
        .record({ picks: fc.subarray(known, { minLength: 1 }), values: fc.array(wrongValue, { minLength: known.length, maxLength: known.length }) })
        .map(({ picks, values }) => JSON.stringify(Object.fromEntries(picks.map((f, i) => [f, values[i]])))),
    },
    // Explicit nulls: "optional" must not mean "nullable".
    { weight: 2, arbitrary: fc.subarray(known, { minLength: 1 }).map((picks) => JSON.stringify(Object.fromEntries(picks.map((f) => [f, null])))) },
    // Prototype pollution keys, raw (JSON.stringify would not write __proto__ as a key).
    {
      weight: 2,
      arbitrary: fc.constantFrom(known[0], '__proto__', 'constructor').chain((f) =>
        fc.constantFrom(
          `{"__proto__":{"${f}":"polluted","isAdmin":true,"roles":["admin"]}}`,
          `{"constructor":{"prototype":{"${f}":"polluted"}}}`,
          `{"${f}":{"__proto__":{"toString":1}},"__proto__":null}`,
          `{"__proto__":[],"${f}":"x","arguments":{"__proto__":{"a":1}}}`,
          `[{"__proto__":{"x":1}}]`,
        ),
      ),
    },
    // Deep nesting.
    { weight: 1, arbitrary: fc.integer({ min: 50, max: 20_000 }).chain((d) => fc.constantFrom(deepArray(d), deepObject(d), `{"${known[0]}":${deepObject(d)}}`)) },
    // Huge strings (some past the 1 MiB body limit).
    { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 1_300_000 }).map((n) => JSON.stringify({ [known[0]]: 'x'.repeat(n) })) },
    // Not JSON at all, or truncated JSON.
    { weight: 2, arbitrary: fc.oneof(unicode, printable, fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)), fc.constantFrom('', '{', '{"a":}', 'null', 'NaN', '1e999', '"\\ud800"', '{"a":1,"a":2}', '\ufeff{}')) },
  );
}

const queryString: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(
      fc.oneof(printable, fc.constantFrom('limit', 'cursor', 'from', 'to', 'status', 'format', 'granularity', 'key_id', 'tool', 'action', 'outcome', '__proto__', 'constructor[prototype][x]', 'a[b][c]', 'limit[]')),
      fc.oneof(oddString.filter((s) => s.length < 5_000), oddNumber.map(String), fc.constantFrom('', '-1', '0', '99999999999999999999', 'true', '2026-13-45', '2026-01-01T00:00:00Z', 'csv', 'xml', 'hour', 'day', 'year')),
      fc.boolean(),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((pairs) =>
    pairs
      // `raw` keeps unencoded characters (% alone, spaces, unicode) as a sloppy client would send them.
      .map(([k, v, raw]) => (raw ? `${k.replace(/[#?\s]/g, '')}=${v.replace(/[#\s]/g, '')}` : `${encode(k)}=${encode(v)}`))
      .join('&'),
  );

const contentTypes = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json;;;',
  'APPLICATION/JSON',
  'application/jsonx',
  'application/json-patch+json',
  'application/problem+json',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '',
  '*/*',
  'application/json; boundary="' + 'b'.repeat(500) + '"',
);

/** Header values Node accepts (no CR/LF): printable ASCII and Latin-1. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 60 }),
  fc.integer({ min: 1_000, max: 60_000 }).map((n) => 'v'.repeat(n)),
);

/* ------------------------------------------------------------------------ */
/* The suite                                                                 */
/* ------------------------------------------------------------------------ */

describe('Bad input (fast-check): no 5xx, stable problem codes, no unhandled rejection, no row changed by a refusal', () => {
  let t: TestApp;
  let upstream: FakeUpstream;
  let tenant: string;
  let jwt: string;
  let agentKey: string;
  let victimKeyId: string;
  let victimServerId: string;
  let routes: Route[];
  let snapshot: Record<string, unknown>;
  const stats = { requests: 0, refused: 0, byStatus: new Map<number, number>() };
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  // Jest gives a test file its own copy of `process`; the host process is the one Node reports on.
  const hostProcess = (require('node:module') as { _load(id: string, parent: null, isMain: boolean): NodeJS.Process })._load('process', null, false);

  beforeAll(async () => {
    hostProcess.on('unhandledRejection', onRejection);
    upstream = await new FakeUpstream().start();
    const plans = join(process.env.DATA_DIR!, `fuzz-plans-${Date.now()}.json`);
    writeFileSync(
      plans,
      JSON.stringify([
        { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 1_000_000, per_hour: 10_000_000 }, quotas: { requests_per_month: 10_000_000, tokens_per_month: 10_000_000_000 }, max_keys: 200, included_credits: 10_000_000 },
      ]),
    );
    t = await createTestApp({ PLANS_FILE: plans, BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET, REDIS_URL: undefined });
    tenant = uniqueTenant('fuzz');
    jwt = managementToken({ tenantId: tenant, roles: ['admin', 'developer', 'auditor', 'service'] });
    await setPlan(t, tenant, 'roomy');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: jwt, body: { name: 'fake', url: upstream.url } });
    expect(reg.status).toBe(201);
    const victim = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: jwt, body: { name: 'victim', url: upstream.url } });
    expect(victim.status).toBe(201);
    victimServerId = victim.body.id;
    // fake__slow stays outside the scope: calls to it are refused (and audited) by scope.
    agentKey = (await createKey(t, jwt, { permission_scope: { mcp_tool_ids: ['fake__echo', 'fake__fail', 'fake__image', 'fake__boom', 'victim__*'] } })).token;
    victimKeyId = (await createKey(t, jwt)).id;

    // Every route the app documents, classified by who may call it.
    const doc = (await t.request({ method: 'GET', url: '/docs/openapi.json' })).body;
    routes = [];
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        const params = (op.parameters ?? []) as { in: string; name: string }[];
        const ref: string | undefined = op.requestBody?.content?.['application/json']?.schema?.$ref;
        const schema = ref ? doc.components.schemas[ref.split('/').pop()!] : undefined;
        const security = JSON.stringify(op.security ?? []);
        const auth: Auth = security.includes('agent-') ? 'agent' : isPublic(path) ? 'public' : 'management';
        routes.push({
          method: method.toUpperCase() as Method,
          path,
          auth,
          params: params.filter((p) => p.in === 'path').map((p) => p.name),
          query: params.filter((p) => p.in === 'query').map((p) => p.name),
          fields: Object.keys(schema?.properties ?? {}),
          hasBody: ['POST', 'PUT', 'PATCH'].includes(method.toUpperCase()),
        });
      }
    }
    snapshot = await tenantRows();
  }, 60_000);

  afterAll(async () => {
    hostProcess.off('unhandledRejection', onRejection);
    const statuses = [...stats.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    process.stdout.write(`fuzz: ${stats.requests} requests over ${routes?.length ?? 0} routes (seed ${SEED}), ${stats.refused} refused; statuses ${statuses}\n`);
    await t?.close();
    await upstream?.stop();
  });

  function isPublic(path: string): boolean {
    return path.startsWith('/health/') || path.startsWith('/.well-known/') || path === '/api/v1/plans' || path === '/api/v1/billing/webhook';
  }

  /** The tenant's rows that a refusal must not change (documented refusal audits excluded). */
  async function tenantRows(): Promise<Record<string, unknown>> {
    const [row] = await t.db.query(
      `SELECT
         (SELECT md5(coalesce(string_agg((to_jsonb(x) - 'last_used_at')::text, ',' ORDER BY x.id), '')) FROM api_keys x WHERE x.tenant_id = $1) AS api_keys,
         (SELECT md5(coalesce(string_agg((to_jsonb(x) - 'tools' - 'tools_refreshed_at')::text, ',' ORDER BY x.id), '')) FROM mcp_servers x WHERE x.tenant_id = $1) AS mcp_servers,
         (SELECT count(*)::int FROM audit_events x WHERE x.tenant_id = $1 AND NOT (x.action = ANY($2))) AS audit_events,
         (SELECT count(*)::int FROM credit_transactions x WHERE x.tenant_id = $1) AS credit_transactions,
         (SELECT md5(coalesce(string_agg(to_jsonb(x)::text, ',' ORDER BY x.period), '')) FROM quota_counters x WHERE x.tenant_id = $1) AS quota_counters,
         (SELECT coalesce(max(balance), -1)::text FROM credit_accounts x WHERE x.tenant_id = $1) AS credit_balance,
         (SELECT md5(coalesce(string_agg(to_jsonb(x)::text, ',' ORDER BY x.tool), '')) FROM tool_prices x WHERE x.tenant_id = $1) AS tool_prices`,
      [tenant, REFUSAL_AUDITS],
    );
    return row;
  }

  function fillPath(route: Route, values: Record<string, string> = {}): string {
    return route.path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? defaultParam(route, name));
  }

  function defaultParam(route: Route, name: string): string {
    if (name === 'tool' || name === 'name') return 'fake__echo';
    if (route.path.startsWith('/api/v1/mcp/servers')) return victimServerId;
    if (route.path.startsWith('/api/v1/api-keys')) return victimKeyId;
    return '00000000-0000-4000-8000-000000000000';
  }

  /** The credential a route expects, valid. */
  function authHeaders(route: Route): Record<string, string> {
    if (route.auth === 'management') return { authorization: `Bearer ${jwt}` };
    if (route.auth === 'agent') return { 'x-api-key': agentKey, accept: MCP_ACCEPT };
    return {};
  }

  function isMcp(route: Route): boolean {
    return route.path === '/mcp' || route.path === '/api/v1/mcp';
  }

  /** Sends one request and checks everything the issue asks of it. */
  async function fire(req: Req): Promise<Res> {
    const injected = await t.app.inject({ method: req.method, url: req.url, headers: req.headers, payload: req.payload });
    // Writes that leave the response path (refusal audits, counted usage) land before the rows are compared.
    await t.app.get(AuthEventsRecorder).drain();
    await t.app.get(UsageBuffer).flush();
    let body: unknown;
    try {
      body = injected.body ? JSON.parse(injected.body) : undefined;
    } catch {
      body = undefined;
    }
    const res: Res = { status: injected.statusCode, headers: injected.headers as Record<string, unknown>, text: injected.body, body };
    stats.requests++;
    stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
    const where = `${req.method} ${req.url.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;
    const contentType = String(res.headers['content-type'] ?? '');
    const toolCall = /^\/api\/v1\/mcp\/tools\/[^/]+\/call$/.test(req.route.path);
    const code = (body as { code?: unknown } | undefined)?.code;

    // 1. No 5xx, but for the documented upstream failures of a tool call (502/504, refunded).
    if (res.status >= 500 && !(toolCall && typeof code === 'string' && UPSTREAM_CODES.has(code))) throw new Error(`5xx: ${where}`);

    // 2. Refusals are problem+json with a code of the table — or JSON-RPC errors on /mcp.
    let refused = res.status >= 400;
    const rpcErrors = isMcp(req.route) && contentType.startsWith('application/json') ? rpcErrorsOf(body, where) : null;
    if (rpcErrors !== null && rpcErrors > 0) refused = true;
    if (res.status >= 400 && !(rpcErrors !== null && rpcErrors > 0)) {
      if (!contentType.startsWith('application/problem+json')) throw new Error(`refusal without problem+json: ${where}`);
      if (typeof code !== 'string' || !(code in PROBLEM_STATUS)) throw new Error(`refusal with an unknown code: ${where}`);
      if ((body as { status?: unknown }).status !== res.status) throw new Error(`problem status differs from the HTTP status: ${where}`);
    }

    // 3. A refusal changes no row (documented refusal audits aside); a success may.
    const after = await tenantRows();
    if (refused) {
      stats.refused++;
      const expected = { ...snapshot };
      const actual = { ...after };
      if (typeof code === 'string' && UPSTREAM_CODES.has(code)) {
        // A call the upstream failed: charged then refunded (two ledger rows), balance and quota as before.
        delete expected.credit_transactions;
        delete actual.credit_transactions;
      }
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        throw new Error(`refused request changed rows: ${where}\nbefore ${JSON.stringify(snapshot)}\nafter  ${JSON.stringify(after)}`);
      }
    }
    snapshot = after;

    // 4. Nothing rejected unhandled.
    if (rejections.length > 0) throw new Error(`unhandled rejection after ${where}: ${String((rejections[0] as Error)?.stack ?? rejections[0])}`);
    return res;
  }

  /** Number of JSON-RPC errors in a /mcp JSON answer (each checked well-formed); null when it is not JSON-RPC. */
  function rpcErrorsOf(body: unknown, where: string): number | null {
    const messages = Array.isArray(body) ? body : [body];
    if (!messages.every((m) => m && typeof m === 'object' && (m as { jsonrpc?: unknown }).jsonrpc === '2.0')) return null;
    let errors = 0;
    for (const m of messages as Record<string, any>[]) {
      if ('error' in m) {
        errors++;
        const e = m.error;
        if (!e || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string') throw new Error(`malformed JSON-RPC error: ${where}`);
        if (!(m.id === null || typeof m.id === 'string' || typeof m.id === 'number')) throw new Error(`JSON-RPC error with a bad id: ${where}`);
      } else if (!('result' in m)) {
        throw new Error(`JSON-RPC response with neither result nor error: ${where}`);
      }
    }
    return errors;
  }

  /** fc.assert with the suite's seed, printed on failure. */
  async function check(name: string, offset: number, numRuns: number, prop: fc.IAsyncPropertyWithHooks<any>): Promise<void> {
    const seed = SEED + offset;
    try {
      await fc.assert(prop, { seed, numRuns, endOnFailure: true });
    } catch (err) {
      // fast-check prints the whole counterexample (bodies up to megabytes): keep the head and the cause.
      const message = String((err as Error).message);
      const cause = (err as { cause?: unknown }).cause;
      const why = cause instanceof Error ? cause.message : String(cause ?? '');
      throw new Error(`fuzz property "${name}" failed with seed ${seed} (FUZZ_SEED=${SEED}); rerun with the same seed to reproduce.\n${message.slice(0, 800)}\n…\nCause: ${why.slice(0, 3_000)}`);
    }
  }

  const byAuth = (auth: Auth) => routes.filter((r) => r.auth === auth);

  it('lists the routes from the app itself (management, agent and public)', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`);
    for (const expected of [
      'POST /api/v1/api-keys',
      'PATCH /api/v1/api-keys/{id}',
      'POST /api/v1/keys/verify',
      'POST /api/v1/mcp/servers',
      'PUT /api/v1/credits/prices/{tool}',
      'POST /api/v1/billing/webhook',
      'GET /api/v1/usage',
      'GET /api/v1/audit-logs',
      'PUT /api/v1/alerts/settings',
      'POST /mcp',
      'POST /api/v1/mcp/tools/{name}/call',
      'GET /health/ready',
    ]) {
      expect(names).toContain(expected);
    }
    expect(byAuth('management').length).toBeGreaterThan(15);
    expect(byAuth('agent').length).toBeGreaterThan(5);
    expect(byAuth('public').length).toBeGreaterThan(3);
  });

  it('the unhandled-rejection collector sees rejections (so its emptiness means something)', async () => {
    const before = rejections.length;
    const probe = new Error('fuzz collector probe');
    // Jest fails a test on an unhandled rejection by itself; hand the probe to our collector only.
    onRejection(probe);
    expect(rejections.length).toBe(before + 1);
    rejections.splice(before, 1);
    expect(hostProcess.listeners('unhandledRejection')).toContain(onRejection);
  });

  it('malformed JSON bodies on every route that takes one', async () => {
    const targets = routes.filter((r) => r.hasBody && !isMcp(r));
    await check(
      'bodies',
      1,
      runs(900),
      fc.asyncProperty(
        fc.constantFrom(...targets).chain((route) => fc.record({ route: fc.constant(route), payload: malformedBody(route.fields) })),
        async ({ route, payload }) => {
          await fire({ method: route.method, url: fillPath(route), route, payload, headers: { ...authHeaders(route), 'content-type': 'application/json' } });
        },
      ),
    );
  }, 120_000);

  it('malformed query strings on every route', async () => {
    await check(
      'query strings',
      2,
      runs(700),
      fc.asyncProperty(fc.constantFrom(...routes.filter((r) => r.method === 'GET' || r.method === 'DELETE')), queryString, async (route, qs) => {
        await fire({ method: route.method, url: `${fillPath(route)}?${qs}`, route, headers: authHeaders(route) });
      }),
    );
  }, 120_000);

  it('odd headers: content types, very long values, junk authorization', async () => {
    await check(
      'headers',
      3,
      runs(600),
      fc.asyncProperty(
        fc.constantFrom(...routes),
        contentTypes,
        fc.constantFrom('authorization', 'x-api-key', 'accept', 'x-request-id', 'mcp-protocol-version', 'origin', 'x-forwarded-for', 'tollgate-signature', 'user-agent', 'cookie', 'if-none-match', 'accept-encoding'),
        headerValue,
        fc.option(fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)), { nil: undefined }),
        async (route, contentType, name, value, body) => {
          const headers: Record<string, string> = { ...authHeaders(route), [name]: value };
          let payload: string | undefined;
          if (route.hasBody && body !== undefined) {
            payload = body;
            if (contentType) headers['content-type'] = contentType;
          }
          await fire({ method: route.method, url: fillPath(route), route, headers, payload });
        },
      ),
    );
  }, 120_000);

  it('random path params', async () => {
    const targets = routes.filter((r) => r.params.length > 0);
    const param = fc.oneof(
      printable.filter((s) => s.length > 0).map(encode),
      unicode.filter((s) => s.length > 0).map(encode),
      fc.uuid().map(String),
      fc.constantFrom('..', '.', '%2e%2e', '%00', '%ff', '%', '%%', '%E0%A4%A', 'null', '__proto__', 'constructor', 'a'.repeat(5_000), '1e309', '-1', 'fake__slow', 'fake__nope', 'victim__echo', '__', 'fake__', '00000000-0000-0000-0000-000000000000'),
      fc.integer({ min: 200, max: 20_000 }).map((n) => 'x'.repeat(n)),
    );
    await check(
      'path params',
      4,
      runs(500),
      fc.asyncProperty(fc.constantFrom(...targets), param, async (route, value) => {
        const values = Object.fromEntries(route.params.map((p) => [p, value]));
        const headers = authHeaders(route);
        const payload = route.hasBody ? '{}' : undefined;
        if (payload) headers['content-type'] = 'application/json';
        await fire({ method: route.method, url: fillPath(route, values), route, headers, payload });
      }),
    );
  }, 120_000);

  it('random and near-miss API keys on agent routes', async () => {
    const agentRoutes = byAuth('agent');
    const flip = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i + 1);
    const key = fc.oneof(
      { weight: 2, arbitrary: printable },
      { weight: 1, arbitrary: unicode.map((s) => s.replace(/[^\x20-\xff]/g, '?')) },
      // One character changed: the checksum catches it before the database.
      { weight: 3, arbitrary: fc.tuple(fc.nat({ max: 200 }), fc.constantFrom(...'0aZ9_-. x')).map(([i, c]) => flip(agentKey, i % agentKey.length, c)) },
      // Truncated, extended, case-changed.
      { weight: 1, arbitrary: fc.nat({ max: 60 }).map((n) => agentKey.slice(0, n)) },
      { weight: 1, arbitrary: fc.constantFrom(agentKey + 'x', agentKey.toUpperCase(), ` ${agentKey} `, `${agentKey},${agentKey}`, agentKey.replace('_live_', '_test_')) },
      // Well-formed keys with a valid checksum that do not exist (cost a lookup).
      { weight: 2, arbitrary: fc.constantFrom('tg', 'sk', 'x').map((p) => APIKeyToken.generate(p, 'live').value) },
    );
    const header = fc.constantFrom('x-api-key', 'bearer', 'bearer-lower', 'both');
    await check(
      'api keys',
      5,
      runs(600),
      fc.asyncProperty(fc.constantFrom(...agentRoutes), key, header, async (route, k, how) => {
        const headers: Record<string, string> = { accept: MCP_ACCEPT, 'content-type': 'application/json' };
        if (how === 'x-api-key' || how === 'both') headers['x-api-key'] = k;
        if (how === 'bearer' || how === 'both') headers.authorization = `Bearer ${k}`;
        if (how === 'bearer-lower') headers.authorization = `bearer   ${k}`;
        const payload = route.hasBody
          ? isMcp(route)
            ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: 'x' } } })
            : JSON.stringify({ arguments: { message: 'x' } })
          : undefined;
        await fire({ method: route.method, url: fillPath(route), route, headers, payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : payload });
      }),
    );
  }, 120_000);

  it('forged, expired and malformed management JWTs', async () => {
    const mgmt = byAuth('management');
    const claims = fc.record(
      {
        sub: wrongValue,
        tenant_id: fc.oneof(fc.constant(tenant), wrongValue),
        roles: fc.oneof(fc.constant(['admin']), wrongValue),
        permission_scope: wrongValue,
        exp: fc.oneof(fc.constant(Math.floor(Date.now() / 1000) + 600), oddNumber),
        nbf: oddNumber,
      },
      { requiredKeys: [] },
    );
    const token = fc.oneof(
      printable,
      // Well signed, with claims of any type.
      claims.map((c) => sign(c as object, TEST_JWT_SECRET, { algorithm: 'HS256', noTimestamp: true })),
      // Signed with the wrong secret, or alg none.
      claims.map((c) => sign({ ...(c as object), tenant_id: tenant, roles: ['admin'] }, 'not-the-secret-0123456789abcdef-0123456789', { algorithm: 'HS256' })),
      claims.map((c) => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.`),
      // Expired.
      fc.constant(managementToken({ tenantId: tenant, expiresIn: -10 })),
      // The valid token, damaged.
      fc.nat({ max: 400 }).map((i) => jwt.slice(0, i % jwt.length) + (jwt[i % jwt.length] === 'A' ? 'B' : 'A') + jwt.slice((i % jwt.length) + 1)),
    );
    await check(
      'jwts',
      6,
      runs(400),
      fc.asyncProperty(fc.constantFrom(...mgmt), token, fc.constantFrom('Bearer ', 'bearer ', 'Basic ', '', 'Bearer  '), async (route, tok, scheme) => {
        const headers: Record<string, string> = { authorization: `${scheme}${tok}` };
        const payload = route.hasBody ? '{}' : undefined;
        if (payload) headers['content-type'] = 'application/json';
        await fire({ method: route.method, url: fillPath(route), route, headers, payload });
      }),
    );
  }, 120_000);

  it('random JSON-RPC messages to /mcp', async () => {
    const route = routes.find((r) => r.method === 'POST' && r.path === '/mcp')!;
    const methods = fc.oneof(
      fc.constantFrom('initialize', 'tools/list', 'tools/call', 'ping', 'notifications/initialized', 'notifications/cancelled', 'resources/list', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel', 'sampling/createMessage', 'rpc.discover', ''),
      printable,
    );
    const id = fc.oneof(fc.integer(), printable, fc.constant(null), oddNumber, fc.boolean(), fc.jsonValue({ maxDepth: 1 }));
    const params = fc.oneof(
      wrongValue,
      fc.record(
        {
          name: fc.oneof(fc.constantFrom('fake__echo', 'fake__fail', 'fake__boom', 'fake__image', 'fake__slow', 'fake__nope', 'victim__echo', '__proto__'), wrongValue),
          arguments: fc.oneof(fc.record({ message: fc.oneof(printable, wrongValue) }), wrongValue),
          protocolVersion: fc.oneof(fc.constantFrom('2025-06-18', '2025-03-26', '2024-11-05', '2099-01-01'), wrongValue),
          capabilities: wrongValue,
          clientInfo: wrongValue,
          cursor: wrongValue,
          _meta: wrongValue,
        },
        { requiredKeys: [] },
      ),
    );
    const message = fc.record({ jsonrpc: fc.oneof(fc.constant('2.0'), wrongValue), id, method: fc.oneof(methods, wrongValue), params }, { requiredKeys: ['jsonrpc', 'method'] });
    const payload = fc.oneof(
      { weight: 6, arbitrary: message.map((m) => JSON.stringify(m)) },
      { weight: 2, arbitrary: fc.array(message, { maxLength: 4 }).map((m) => JSON.stringify(m)) },
      { weight: 2, arbitrary: malformedBody(['jsonrpc', 'method', 'params', 'id']) },
    );
    const headers = fc.record({
      accept: fc.constantFrom(MCP_ACCEPT, 'application/json', 'text/event-stream', '*/*', 'text/html', ''),
      'mcp-protocol-version': fc.option(fc.constantFrom('2025-06-18', '2025-03-26', '1999-01-01', 'x'.repeat(300), ''), { nil: undefined }),
      origin: fc.option(fc.constantFrom('http://tollgate.test', 'http://evil.example', 'null', 'http://localhost:3000'), { nil: undefined }),
    });
    await check(
      'json-rpc',
      7,
      runs(900),
      fc.asyncProperty(payload, headers, fc.constantFrom('/mcp', '/api/v1/mcp'), async (body, h, path) => {
        const sent: Record<string, string> = { 'x-api-key': agentKey, 'content-type': 'application/json' };
        for (const [k, v] of Object.entries(h)) if (v !== undefined && v !== '') sent[k] = v;
        await fire({ method: 'POST', url: path, route, headers: sent, payload: body });
      }),
    );
  }, 120_000);

  it('random tool names and arguments on the REST mirror', async () => {
    const route = routes.find((r) => r.method === 'POST' && r.path === '/api/v1/mcp/tools/{name}/call')!;
    await check(
      'tool calls',
      8,
      runs(400),
      fc.asyncProperty(
        fc.oneof(fc.constantFrom('fake__echo', 'fake__fail', 'fake__image', 'fake__slow', 'fake__nope', 'victim__echo'), printable.filter((s) => s.length > 0).map(encode)),
        fc.oneof(fc.record({ arguments: fc.oneof(fc.record({ message: fc.oneof(printable, wrongValue) }), wrongValue) }).map((b) => JSON.stringify(b)), malformedBody(['arguments'])),
        async (name, body) => {
          await fire({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, route, headers: { 'x-api-key': agentKey, 'content-type': 'application/json' }, payload: body });
        },
      ),
    );
  }, 120_000);

  it('signed and unsigned billing webhooks with random events', async () => {
    const route = routes.find((r) => r.path === '/api/v1/billing/webhook')!;
    const event = fc.oneof(
      fc.record(
        {
          id: fc.oneof(printable, wrongValue),
          type: fc.oneof(fc.constantFrom('subscription.updated', 'credits.purchased', 'invoice.paid'), wrongValue),
          data: fc.oneof(
            fc.record(
              {
                tenant_id: fc.oneof(fc.constantFrom('fuzz-other-tenant', '__proto__', '_unknown'), wrongValue),
                plan: fc.oneof(fc.constantFrom('free', 'roomy', 'nope'), wrongValue),
                status: fc.oneof(fc.constantFrom('active', 'past_due', 'canceled', 'gone'), wrongValue),
                amount: fc.oneof(oddNumber, wrongValue),
              },
              { requiredKeys: [] },
            ),
            wrongValue,
          ),
        },
        { requiredKeys: [] },
      ).map((e) => JSON.stringify(e)),
      malformedBody(['id', 'type', 'data']),
    );
    const signature = (body: string, mode: string) => {
      const ts = mode === 'stale' ? Math.floor(Date.now() / 1000) - 3_600 : Math.floor(Date.now() / 1000);
      const mac = createHmac('sha256', mode === 'wrong' ? 'wrong-secret' : WEBHOOK_SECRET).update(`${ts}.${body}`).digest('hex');
      return mode === 'junk' ? `t=${ts},v1=zz` : `t=${ts},v1=${mac}`;
    };
    await check(
      'webhooks',
      9,
      runs(300),
      fc.asyncProperty(event, fc.constantFrom('good', 'good', 'wrong', 'stale', 'junk', 'none'), async (body, mode) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (mode !== 'none') headers['tollgate-signature'] = signature(body, mode);
        await fire({ method: 'POST', url: route.path, route, headers, payload: body });
      }),
    );
  }, 120_000);

  it('unknown paths and methods', async () => {
    const anyRoute: Route = { method: 'GET', path: '/*', auth: 'public', params: [], query: [], fields: [], hasBody: false };
    await check(
      'unknown paths',
      10,
      runs(250),
      fc.asyncProperty(
        fc.constantFrom<Method>('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
        fc.oneof(
          fc.array(printable.filter((s) => s.length > 0).map(encode), { minLength: 1, maxLength: 5 }).map((p) => `/${p.join('/')}`),
          fc.constantFrom(...routes.map((r) => r.path)).chain((p) => fc.constantFrom(`${p}/extra`, `${p}//`, p.toUpperCase(), `${p}%2F..`, `${p}/../../..`)),
        ),
        async (method, path) => {
          const routeHere = routes.find((r) => r.method === method && r.path === path) ?? { ...anyRoute, method };
          await fire({ method, url: path.replace(/\{\w+\}/g, 'x'), route: routeHere, headers: { authorization: `Bearer ${jwt}`, 'x-api-key': agentKey, accept: MCP_ACCEPT } });
        },
      ),
    );
  }, 120_000);

  it('still serves well-formed calls after all that', async () => {
    const ok = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': agentKey }, body: { arguments: { message: 'after' } } });
    expect([200, 429]).toContain(ok.status);
    const ready = await t.request({ method: 'GET', url: '/health/ready' });
    expect(ready.status).toBe(200);
    expect(rejections).toEqual([]);
  });
});
