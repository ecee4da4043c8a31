import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/**
 * Issue 4: a key on the built-in `free` plan, with the limit read from the
 * public catalog: N answers with X-RateLimit-* (Remaining N-1 … 0), then 429.
 */
describe('Free plan per-minute limit (e2e)', () => {
  let t: TestApp;
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  it('a free key: N × 200 with X-RateLimit-Remaining N-1 … 0, then 429 rate_limited with Retry-After and quota_info', async () => {
    const plans = await t.request({ method: 'GET', url: '/api/v1/plans' });
    expect(plans.status).toBe(200);
    const free = plans.body.data.find((p: { id: string }) => p.id === 'free');
    expect(free).toBeDefined();
    const n: number = free.rate_limits.per_minute;
    expect(Number.isInteger(n)).toBe(true);
    expect(n).toBeGreaterThan(1);

    const tenant = uniqueTenant('free');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'free');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    const list = () => t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key.token } });

    const remaining: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await list();
      expect({ i, status: res.status }).toEqual({ i, status: 200 });
      expect(res.headers['x-ratelimit-limit']).toBe(String(n));
      expect(String(res.headers['x-ratelimit-remaining'])).toMatch(/^\d+$/);
      const reset = Number(res.headers['x-ratelimit-reset']);
      expect(Number.isInteger(reset)).toBe(true);
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
      remaining.push(Number(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual(Array.from({ length: n }, (_, i) => n - 1 - i));

    const before = Date.now();
    const res = await list();
    const after = Date.now();
    expect(res.status).toBe(429);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('rate_limited');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.body.quota_info).toEqual({ plan: 'free', limit: n, used: n, remaining: 0, reset_at: expect.any(String) });
    const resetAt = res.body.quota_info.reset_at as string;
    expect(new Date(resetAt).toISOString()).toBe(resetAt);
    expect(Date.parse(resetAt)).toBeGreaterThan(before);
    // The block (60 s) starts while the request runs: between `before` and `after`, however slow the host.
    expect(Date.parse(resetAt)).toBeLessThanOrEqual(after + 60_000);
  });
});
