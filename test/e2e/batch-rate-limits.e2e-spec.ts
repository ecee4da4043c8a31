import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, writePlansFile } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/**
 * P2 and JSON-RPC batches on /mcp, with the in-process rate-limit storage
 * (REDIS_URL unset for this app; the Redis path is agent-limits-redis).
 * A batch counts per message: the minute and hour windows one hit per
 * JSON-RPC request in the body, the tool_call window one per `tools/call`.
 * A request whose hits do not fit a window is refused whole (429), and
 * nothing of it reaches the upstream.
 */
const PLAN = {
  id: 'batchy',
  name: 'Batchy',
  // Per minute roomy enough for the review's batch of 100, so the tool_call window is the one that decides.
  rate_limits: { per_minute: 200, per_hour: 150, tool_calls_per_minute: 10 },
  quotas: { requests_per_month: 10_000, tokens_per_month: 1_000_000_000 },
  max_keys: 10,
  included_credits: 1_000,
};

describe('JSON-RPC batches count per message in the rate-limit windows (in-process storage)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let admin: string;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp({ REDIS_URL: undefined, PLANS_FILE: writePlansFile([PLAN]) });
    const tenant = uniqueTenant('batch');
    admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, PLAN.id);
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  const newKey = async () => (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
  const call = (i: number) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: `m${i}` } } });
  const calls = (n: number, from = 0) => Array.from({ length: n }, (_, i) => call(from + i));
  /** Without MCP-Protocol-Version: a 2025-03-26 client, for which the SDK transport accepts batches (up to 100). */
  const post = (token: string, body: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': token },
      payload: JSON.stringify(body),
    });
  const served = (body: string) => (JSON.parse(body) as Array<{ result?: { isError?: boolean } }>).filter((m) => m.result && !m.result.isError).length;
  const list = (token: string) => t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': token } });

  it("the review's batch of 100 tools/call on a plan with 10 tool calls per minute: 429 rate_limited whole, nothing reaches the upstream", async () => {
    const token = await newKey();
    const before = fake.callCount('echo');
    const res = await post(token, calls(100));
    expect(res.statusCode).toBe(429);
    expect(String(res.headers['content-type'])).toContain('application/problem+json');
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ code: 'rate_limited', window: 'tool_call', quota_info: { plan: 'batchy', limit: 10, used: 10, remaining: 0 } });
    expect(body.detail).toContain('counts 100');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(res.headers['x-ratelimit-limit']).toBe('10');
    expect(res.headers['x-ratelimit-remaining']).toBe('0');
    expect(fake.callCount('echo')).toBe(before);

    // The minute window (before tool_call) counted the 100 requests, the hour window (after it) none:
    // a listing shows minute 200 - 101 = 99 left, hour 150 - 1 = 149 (had the hour counted the batch: 49).
    const after = await list(token);
    expect(after.status).toBe(200);
    expect(after.headers['x-ratelimit-limit']).toBe('200');
    expect(after.headers['x-ratelimit-remaining']).toBe('99');
  });

  it('a batch that fits is counted per message (Remaining drops by N); one that does not fit is refused whole', async () => {
    const token = await newKey();
    const before = fake.callCount('echo');
    // 4 tools/call + 2 tools/list + a notification: 6 requests, 4 tool calls.
    const batch = [...calls(4), { jsonrpc: '2.0', id: 50, method: 'tools/list' }, { jsonrpc: '2.0', id: 51, method: 'tools/list' }, { jsonrpc: '2.0', method: 'notifications/initialized' }];
    const ok = await post(token, batch);
    expect(ok.statusCode).toBe(200);
    expect(served(ok.body)).toBe(6);
    expect(fake.callCount('echo')).toBe(before + 4);
    // Tightest: tool_call 10 - 4 = 6 (minute 200 - 6, hour 150 - 6).
    expect(ok.headers['x-ratelimit-limit']).toBe('10');
    expect(ok.headers['x-ratelimit-remaining']).toBe('6');

    const single = await post(token, call(60));
    expect(single.statusCode).toBe(200);
    expect(single.headers['x-ratelimit-remaining']).toBe('5');

    // 6 tool calls with 5 left: refused whole, none served (all or nothing).
    const tooMany = await post(token, calls(6, 70));
    expect(tooMany.statusCode).toBe(429);
    expect(JSON.parse(tooMany.body)).toMatchObject({ code: 'rate_limited', window: 'tool_call', quota_info: { limit: 10, used: 10, remaining: 0 } });
    expect(fake.callCount('echo')).toBe(before + 5);

    // A listing is no tool call: minute 200 - 7 - 6 - 1 = 186, hour 150 - 7 - 1 = 142 (the refused batch not counted per hour).
    const listing = await list(token);
    expect(listing.status).toBe(200);
    expect(listing.headers['x-ratelimit-limit']).toBe('150');
    expect(listing.headers['x-ratelimit-remaining']).toBe('142');
  });
});
