import { createTestApp, TestApp } from '../support/create-test-app';

/** P2's anonymous tier: public routes are limited per client IP. */
describe('anonymous rate limit on public routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    // In-process counters (no REDIS_URL) so other suites' traffic from 127.0.0.1 does not count here.
    t = await createTestApp({ ANONYMOUS_RATE_LIMIT: '5', REDIS_URL: undefined });
  });
  afterAll(async () => {
    await t.close();
  });

  it('allows the limit with X-RateLimit-* headers, then 429 with Retry-After and quota_info; other IPs are unaffected', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.request({ method: 'GET', url: '/api/v1/plans' });
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('5');
      remaining.push(String(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const refused = await t.request({ method: 'GET', url: '/.well-known/oauth-protected-resource' });
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.body).toMatchObject({ code: 'rate_limited', quota_info: { plan: 'anonymous', limit: 5, remaining: 0 } });
    const other = await t.app.inject({ method: 'GET', url: '/api/v1/plans', remoteAddress: '203.0.113.7' });
    expect(other.statusCode).toBe(200);
  });
});

/** TRUST_PROXY as a hop count: a client cannot choose the address its limits and audit rows use. */
describe('client address behind one proxy (TRUST_PROXY=1)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ANONYMOUS_RATE_LIMIT: '3', TRUST_PROXY: '1', REDIS_URL: undefined });
  });
  afterAll(async () => {
    await t.close();
  });

  // The proxy appends the address it saw (198.51.100.7) to whatever the client wrote.
  const via = (forged: string) => ({ 'x-forwarded-for': `${forged}, 198.51.100.7` });

  it('limits by the address the proxy saw, whatever the client wrote before it', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await t.app.inject({ method: 'GET', url: '/api/v1/plans', headers: via(`10.0.0.${i}`) })).statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // Another client behind the same proxy has its own allowance.
    const other = await t.app.inject({ method: 'GET', url: '/api/v1/plans', headers: { 'x-forwarded-for': '198.51.100.8' } });
    expect(other.statusCode).toBe(200);
  });

  it('records the address the proxy saw in the audit row of a failed authentication', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/mcp/tools', headers: { ...via('10.9.9.9'), 'x-api-key': 'tg_live_notakey' } });
    expect(res.statusCode).toBe(401);
    const by = Date.now() + 5_000;
    let rows: { ip: string }[] = [];
    while (rows.length === 0 && Date.now() < by) {
      rows = await t.db.query(`SELECT ip FROM audit_events WHERE action = 'auth.failed' AND ip IN ('198.51.100.7', '10.9.9.9')`);
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toEqual([{ ip: '198.51.100.7' }]);
  });
});
