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
