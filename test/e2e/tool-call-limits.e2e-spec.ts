import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';

/** P2: a stricter per-minute window for the expensive route (tool calls), set per plan. */
describe('stricter rate limit for tool calls', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let key: string;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    const plans = join(process.env.DATA_DIR!, `tool-call-plans-${Date.now()}.json`);
    writeFileSync(plans, JSON.stringify([{ id: 'calls2', name: 'Calls 2', rate_limits: { per_minute: 100, per_hour: 1000, tool_calls_per_minute: 2 }, quotas: { requests_per_month: 1000, tokens_per_month: 1000000 }, max_keys: 10, included_credits: 100 }]));
    t = await createTestApp({ PLANS_FILE: plans, REDIS_URL: undefined });
    const tenant = uniqueTenant('calls');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'calls2');
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } })).status).toBe(201);
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  it('limits tool calls (REST and MCP) to the plan window while listing keeps the general limit', async () => {
    const h = { 'x-api-key': key };
    const call = () => t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: h, body: { arguments: { message: 'x' } } });
    const first = await call();
    expect(first.status).toBe(200);
    expect(first.headers['x-ratelimit-limit']).toBe('2');
    expect(first.headers['x-ratelimit-remaining']).toBe('1');
    const mcp = await t.request({
      method: 'POST',
      url: '/mcp',
      headers: { ...h, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: 'y' } } },
    });
    expect(mcp.status).toBe(200);
    const third = await call();
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'rate_limited', window: 'tool_call', quota_info: { plan: 'calls2', limit: 2 } });
    const list = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: h });
    expect(list.status).toBe(200);
    expect(list.headers['x-ratelimit-limit']).toBe('100');
  });
});
