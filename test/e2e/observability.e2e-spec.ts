import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { LogDestination } from '../../src/observability/logging';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** The value of one series (`name{labels}`), or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[4]);
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe('Metrics at /metrics (O3)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let admin: string;
  let key: { id: string; token: string };

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
    const tenant = uniqueTenant('metrics');
    admin = managementToken({ tenantId: tenant });
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'obs', url: fake.url } });
    expect(reg.status).toBe(201);
    key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['obs__*'] } });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  const scrape = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return res.body;
  };

  it('exposes the series with their labels after a scripted load', async () => {
    const call = (tool: string, headers: Record<string, string> = { 'x-api-key': key.token }) =>
      t.request({ method: 'POST', url: `/api/v1/mcp/tools/${tool}/call`, headers, body: { arguments: { message: 'hi' } } });
    for (let i = 0; i < 3; i++) expect((await call('obs__echo')).status).toBe(200);
    expect((await call('obs__boom')).status).toBe(502);
    expect((await call('obs__echo', { 'x-api-key': 'tg_live_notakey' })).status).toBe(401);
    // A price above the balance: refused with insufficient_credits, never charged.
    expect((await t.request({ method: 'PUT', url: '/api/v1/credits/prices/obs__fail', token: admin, body: { price: 1_000_000 } })).status).toBe(200);
    expect((await call('obs__fail')).status).toBe(402);
    expect((await t.request({ method: 'GET', url: '/api/v1/nowhere' })).status).toBe(404);

    const text = await scrape();
    const route = '/api/v1/mcp/tools/:name/call';
    expect(sample(text, 'tollgate_http_requests_total', { method: 'POST', route, status: '200' })).toBe(3);
    expect(sample(text, 'tollgate_http_requests_total', { method: 'POST', route, status: '502' })).toBe(1);
    expect(sample(text, 'tollgate_http_requests_total', { method: 'POST', route, status: '401' })).toBe(1);
    expect(sample(text, 'tollgate_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(sample(text, 'tollgate_http_request_duration_seconds_count', { method: 'POST', route, status: '200' })).toBe(3);
    expect(sample(text, 'tollgate_http_request_duration_seconds_bucket', { method: 'POST', route, status: '200', le: '+Inf' })).toBe(3);

    expect(sample(text, 'tollgate_key_verifications_total', { outcome: 'valid' })).toBe(5);
    expect(sample(text, 'tollgate_key_verifications_total', { outcome: 'invalid_key' })).toBe(1);
    expect(sample(text, 'tollgate_key_verifications_total', { outcome: 'revoked_key' })).toBe(0);
    const hits = sample(text, 'tollgate_key_cache_lookups_total', { result: 'hit' })!;
    const misses = sample(text, 'tollgate_key_cache_lookups_total', { result: 'miss' })!;
    expect(hits).toBeGreaterThanOrEqual(4);
    expect(misses).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'tollgate_key_cache_hit_ratio')).toBeCloseTo(hits / (hits + misses), 5);

    expect(sample(text, 'tollgate_credits_charged_total')).toBe(3);
    expect(sample(text, 'tollgate_rejections_total', { reason: 'insufficient_credits' })).toBe(1);
    expect(sample(text, 'tollgate_upstream_call_duration_seconds_count', { upstream: 'obs', outcome: 'ok' })).toBe(3);
    expect(sample(text, 'tollgate_upstream_call_duration_seconds_count', { upstream: 'obs', outcome: 'error' })).toBe(1);
    expect(sample(text, 'tollgate_upstream_errors_total', { upstream: 'obs', code: 'upstream_error' })).toBe(1);
    expect(sample(text, 'tollgate_usage_buffer_depth')).toBeGreaterThanOrEqual(0);
    // Five admissions (3 served, 1 refunded after the upstream failed, 1 refused for credits), one after the other: a statement each.
    expect(sample(text, 'tollgate_admission_calls_total')).toBe(5);
    expect(sample(text, 'tollgate_admission_statements_total')).toBe(5);
    expect(sample(text, 'tollgate_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE tollgate_http_request_duration_seconds histogram');
  });

  it('counts rate-limit refusals', async () => {
    const before = sample(await scrape(), 'tollgate_rejections_total', { reason: 'rate_limited' })!;
    const limited = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['obs__*'] } });
    let refused = 0;
    // The free plan allows 60 requests a minute per key.
    for (let i = 0; i < 70 && refused === 0; i++) {
      const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': limited.token } });
      if (res.status === 429) refused++;
    }
    expect(refused).toBe(1);
    expect(sample(await scrape(), 'tollgate_rejections_total', { reason: 'rate_limited' })).toBe(before + 1);
  });

  it('without METRICS_TOKEN answers loopback callers only, and not through a proxy', async () => {
    const remote = await t.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3' });
    expect(remote.statusCode).toBe(403);
    expect(JSON.parse(remote.body)).toMatchObject({ code: 'forbidden' });
    expect(remote.body).not.toContain('tollgate_http_requests_total');
    const proxied = await t.app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(proxied.statusCode).toBe(403);
    const local = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(local.statusCode).toBe(200);
    expect(local.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('with METRICS_TOKEN requires the bearer token, from anywhere', async () => {
    const guarded = await createTestApp({ METRICS_TOKEN });
    try {
      const none = await guarded.app.inject({ method: 'GET', url: '/metrics' });
      expect(none.statusCode).toBe(401);
      expect(JSON.parse(none.body)).toMatchObject({ code: 'unauthenticated' });
      const wrong = await guarded.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
      expect(wrong.statusCode).toBe(401);
      const right = await guarded.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('# TYPE tollgate_key_verifications_total counter');
    } finally {
      await guarded.close();
    }
  });
});

describe('Request logs (O4)', () => {
  const lines: Record<string, any>[] = [];
  let raw = '';
  let t: TestApp;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        raw += chunk.toString();
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    t = await createTestApp({ LOG_LEVEL: 'log' }, [{ provide: LogDestination, useValue: new LogDestination(sink) }]);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('logs one JSON line per request with request id, tenant, key id, route, status and latency; never the secret', async () => {
    const tenant = uniqueTenant('logs');
    const admin = managementToken({ tenantId: tenant });
    const key = await createKey(t, admin);
    const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key.token, 'x-request-id': 'log-test-req-1' } });
    expect(res.status).toBe(200);
    const bearer = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { authorization: `Bearer ${key.token}` } });
    expect(bearer.status).toBe(200);

    const line = lines.find((l) => l.request_id === 'log-test-req-1');
    expect(line).toMatchObject({
      level: 30,
      request_id: 'log-test-req-1',
      tenant_id: tenant,
      key_id: key.id,
      route: '/api/v1/mcp/tools',
      res: { status: 200 },
      req: { id: 'log-test-req-1', method: 'GET', url: '/api/v1/mcp/tools' },
    });
    expect(typeof line!.latency_ms).toBe('number');
    // Only harmless headers are logged: the credential headers are not in the line at all.
    expect(line!.req.headers).not.toHaveProperty('x-api-key');
    expect(line!.req.headers).not.toHaveProperty('authorization');
    // The management call that created the key logged its tenant, and no line holds a secret.
    expect(lines.some((l) => l.route === '/api/v1/api-keys' && l.tenant_id === tenant && l.res?.status === 201)).toBe(true);
    expect(raw).not.toContain(key.token);
    expect(raw).not.toContain(admin);
    // Both agent requests (X-API-Key, then the key as a Bearer token) were logged with the key id, neither with its secret.
    expect(lines.filter((l) => l.key_id === key.id && l.route === '/api/v1/mcp/tools')).toHaveLength(2);
  });

  it('a client that hangs up before its answer leaves a warn line "request aborted"', async () => {
    const fake = await new FakeUpstream().start();
    try {
      const tenant = uniqueTenant('logs-abort');
      const admin = managementToken({ tenantId: tenant });
      expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'slowpoke', url: fake.url } })).status).toBe(201);
      const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['slowpoke__*'] } });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const address = t.app.getHttpServer().address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const controller = new AbortController();
      const call = fetch(`http://127.0.0.1:${port}/api/v1/mcp/tools/slowpoke__slow/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key.token, 'x-request-id': 'log-test-abort-1' },
        body: JSON.stringify({ arguments: { ms: 1500 } }),
        signal: controller.signal,
      }).catch((err: Error) => err);
      // Hang up once the call is in flight (the upstream has it, and answers only after 1.5 s), not
      // after a fixed pause: on a slow host the request may not even have reached the route by then.
      const inFlightBy = Date.now() + 10_000;
      while (fake.callCount('slow') === 0 && Date.now() < inFlightBy) await new Promise((r) => setTimeout(r, 10));
      expect(fake.callCount('slow')).toBe(1);
      controller.abort();
      expect((await call as Error).name).toBe('AbortError');
      const deadline = Date.now() + 10_000;
      while (!lines.some((l) => l.request_id === 'log-test-abort-1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(lines.find((l) => l.request_id === 'log-test-abort-1')).toMatchObject({
        level: 40,
        msg: 'request aborted',
        aborted: true,
        route: '/api/v1/mcp/tools/:name/call',
        key_id: key.id,
      });
    } finally {
      await fake.stop();
    }
  });

  it('is silent at LOG_LEVEL=silent (the test default)', async () => {
    const quiet: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        quiet.push(chunk.toString());
        done();
      },
    });
    const silent = await createTestApp({}, [{ provide: LogDestination, useValue: new LogDestination(sink) }]);
    try {
      expect((await silent.request({ method: 'GET', url: '/api/v1/plans' })).status).toBe(200);
      expect(quiet).toEqual([]);
    } finally {
      await silent.close();
    }
  });
});

describe('Readiness follows Redis (O2)', () => {
  let port: number;
  let redis: ChildProcess | null = null;
  let t: TestApp;

  const startRedis = async () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      if (await new Promise<boolean>((resolve) => {
        const s = require('node:net').connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      })) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('redis-server did not start');
  };

  const stopRedis = async () => {
    const child = redis;
    redis = null;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  };

  const ready = async () => t.request({ method: 'GET', url: '/health/ready' });

  const eventually = async (status: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = await ready();
    while (last.status !== status && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      last = await ready();
    }
    return last;
  };

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    t = await createTestApp({ REDIS_URL: `redis://127.0.0.1:${port}` });
  }, 30_000);

  afterAll(async () => {
    if (!redis) await startRedis().catch(() => undefined);
    await t?.close();
    await stopRedis();
  }, 30_000);

  it('is 200 with Redis up, 503 while it is down, 200 again when it returns; liveness stays 200', async () => {
    const up = await eventually(200);
    expect(up.status).toBe(200);
    expect(up.body.details.redis).toEqual({ status: 'up' });

    await stopRedis();
    const down = await eventually(503);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('error');
    expect(down.body.error.redis.status).toBe('down');
    expect(down.body.details.database).toEqual({ status: 'up' });
    expect((await t.request({ method: 'GET', url: '/health/live' })).status).toBe(200);

    await startRedis();
    const back = await eventually(200);
    expect(back.status).toBe(200);
    expect(back.body.details.redis).toEqual({ status: 'up' });
  }, 60_000);

  it('does not check Redis when REDIS_URL is unset', async () => {
    const plain = await createTestApp({ REDIS_URL: undefined });
    try {
      const res = await plain.request({ method: 'GET', url: '/health/ready' });
      expect(res.status).toBe(200);
      expect(res.body.details.redis).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
