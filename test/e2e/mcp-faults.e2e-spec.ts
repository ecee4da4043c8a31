import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { AuthEventsRecorder } from '../../src/auth/auth-events.recorder';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant, setPlan } from '../support/factories';
import { BOOM_MESSAGE, FakeUpstream } from '../support/fake-upstream';

const META = 'io.tollgate/error';

describe('MCP gateway faults (e2e, SDK client → Tollgate → in-process fake upstream)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let baseUrl: string;
  let tenant: string;
  let admin: string;
  let allKey: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    tenant = uniqueTenant('faults');
    admin = managementToken({ tenantId: tenant });
    // Many requests from one key in a minute: a plan whose rate limit this suite does not test.
    await setPlan(t, tenant, 'enterprise');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url, timeout_ms: 500 } });
    expect(reg.status).toBe(201);
    expect(reg.body.timeout_ms).toBe(500);
    expect(reg.body.tools.map((x: { name: string }) => x.name).sort()).toEqual(['fake__boom', 'fake__echo', 'fake__fail', 'fake__huge', 'fake__image', 'fake__slow']);
    allKey = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
  }, 60_000);

  afterEach(async () => {
    // Every test leaves the upstream answering normally.
    fake.mode = 'normal';
    if (!isListening(fake)) await fake.start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t?.close();
    await fake?.stop();
  });

  async function connect(key: string = allKey): Promise<Client> {
    const client = new Client({ name: 'e2e-faults', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': key } } }));
    clients.push(client);
    return client;
  }

  async function direct(): Promise<Client> {
    const client = new Client({ name: 'e2e-direct', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(fake.url)));
    clients.push(client);
    return client;
  }

  function restCall(name: string, args: Record<string, unknown>, key: string = allKey) {
    return t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key }, body: { arguments: args } });
  }

  it('a call slower than the upstream timeout_ms is an isError result with upstream_timeout, well before the upstream answers', async () => {
    const client = await connect();
    const before = fake.callCount('slow');
    const started = Date.now();
    const result = await client.callTool({ name: 'fake__slow', arguments: { ms: 2000 } });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1500);
    expect(result.isError).toBe(true);
    expect(result._meta?.[META]).toMatchObject({ code: 'upstream_timeout', upstream: 'fake', timeout_ms: 500 });
    expect(JSON.stringify(result.content)).toContain('upstream_timeout');
    expect(fake.callCount('slow')).toBe(before + 1);

    // A fast call under the limit still works on the same upstream.
    const ok = await client.callTool({ name: 'fake__slow', arguments: { ms: 10 } });
    expect(ok.isError).toBeFalsy();
    expect(ok.content).toEqual([{ type: 'text', text: 'slept 10 ms' }]);
  });

  it('REST mirror: the same slow call is 504 upstream_timeout problem+json', async () => {
    const started = Date.now();
    const res = await restCall('fake__slow', { ms: 2000 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(res.status).toBe(504);
    expect(String(res.headers['content-type'])).toContain('application/problem+json');
    expect(res.body.code).toBe('upstream_timeout');
  });

  it('an upstream that accepts the connection but never answers gives upstream_timeout', async () => {
    const client = await connect();
    await client.callTool({ name: 'fake__echo', arguments: { message: 'warm' } });
    fake.mode = 'hang';
    const started = Date.now();
    const result = await client.callTool({ name: 'fake__echo', arguments: { message: 'lost' } });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result.isError).toBe(true);
    expect(result._meta?.[META]).toMatchObject({ code: 'upstream_timeout' });
    const rest = await restCall('fake__echo', { message: 'lost' });
    expect(rest.status).toBe(504);
    expect(rest.body.code).toBe('upstream_timeout');
    fake.mode = 'normal';
    const again = await client.callTool({ name: 'fake__echo', arguments: { message: 'back' } });
    expect(again.content).toEqual([{ type: 'text', text: 'echo: back' }]);
  });

  it('an upstream answering malformed JSON gives upstream_error, and Tollgate recovers when it answers properly again', async () => {
    const client = await connect();
    fake.mode = 'malformed';
    const result = await client.callTool({ name: 'fake__echo', arguments: { message: 'x' } });
    expect(result.isError).toBe(true);
    expect(result._meta?.[META]).toMatchObject({ code: 'upstream_error', upstream: 'fake' });
    const rest = await restCall('fake__echo', { message: 'x' });
    expect(rest.status).toBe(502);
    expect(rest.body.code).toBe('upstream_error');
    fake.mode = 'normal';
    const again = await client.callTool({ name: 'fake__echo', arguments: { message: 'fine' } });
    expect(again.content).toEqual([{ type: 'text', text: 'echo: fine' }]);
  });

  it('upstream down → upstream_error (MCP and REST 502); Tollgate stays live; after a restart calls succeed on a new upstream session', async () => {
    const client = await connect();
    const warm = await client.callTool({ name: 'fake__echo', arguments: { message: 'warm' } });
    expect(warm.isError).toBeFalsy();
    const inits = fake.methodCount('initialize');

    await fake.stop();
    const result = await client.callTool({ name: 'fake__echo', arguments: { message: 'down' } });
    expect(result.isError).toBe(true);
    expect(result._meta?.[META]).toMatchObject({ code: 'upstream_error', upstream: 'fake' });
    const rest = await restCall('fake__echo', { message: 'down' });
    expect(rest.status).toBe(502);
    expect(String(rest.headers['content-type'])).toContain('application/problem+json');
    expect(rest.body.code).toBe('upstream_error');

    const live = await fetch(`${baseUrl}/health/live`);
    expect(live.status).toBe(200);
    // The agent's own MCP connection to Tollgate is unaffected.
    expect((await client.listTools()).tools.length).toBe(6);

    await fake.start();
    const back = await client.callTool({ name: 'fake__echo', arguments: { message: 'back' } });
    expect(back.isError).toBeFalsy();
    expect(back.content).toEqual([{ type: 'text', text: 'echo: back' }]);
    expect(fake.methodCount('initialize')).toBe(inits + 1);
    const restBack = await restCall('fake__echo', { message: 'rest back' });
    expect(restBack.status).toBe(200);
    expect(restBack.body.content).toEqual([{ type: 'text', text: 'echo: rest back' }]);
  });

  it('upstream sessions are pooled: many calls, no new upstream initialize', async () => {
    const client = await connect();
    await client.callTool({ name: 'fake__echo', arguments: { message: 'warm' } });
    const inits = fake.methodCount('initialize');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => client.callTool({ name: 'fake__echo', arguments: { message: `m${i}` } })),
    );
    expect(results.map((r) => r.content)).toEqual(Array.from({ length: 10 }, (_, i) => [{ type: 'text', text: `echo: m${i}` }]));
    expect(fake.methodCount('initialize')).toBe(inits);
  });

  it('an upstream isError result passes through unchanged (MCP and REST)', async () => {
    const upstreamResult = await (await direct()).callTool({ name: 'fail', arguments: {} });
    expect(upstreamResult.isError).toBe(true);
    const client = await connect();
    const viaTollgate = await client.callTool({ name: 'fake__fail', arguments: {} });
    expect(withoutBudget(viaTollgate)).toEqual(upstreamResult);
    expect(budgetOf(viaTollgate)).toMatchObject({ plan: 'enterprise', requests_remaining: expect.any(Number), credits_remaining: expect.any(Number) });
    const rest = await restCall('fake__fail', {});
    expect(rest.status).toBe(200);
    expect(withoutBudget(rest.body)).toEqual(upstreamResult);
  });

  it("an upstream JSON-RPC error reaches the SDK client as McpError with the upstream's code and message", async () => {
    const client = await connect();
    const before = fake.callCount('boom');
    const err = await client.callTool({ name: 'fake__boom', arguments: { id: -1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(-32602);
    expect(err.message).toContain(BOOM_MESSAGE);
    expect(err.data).toEqual({ field: 'id' });
    expect(fake.callCount('boom')).toBe(before + 1);
  });

  it('image content and structuredContent pass through unchanged, and the outputSchema is listed as the upstream declares it', async () => {
    const up = await direct();
    const upstreamTools = await up.listTools();
    const upstreamResult = await up.callTool({ name: 'image', arguments: { label: 'dot' } });
    expect(upstreamResult.structuredContent).toEqual({ width: 1, height: 1, format: 'png', label: 'dot' });

    const client = await connect();
    const listed = (await client.listTools()).tools.find((x) => x.name === 'fake__image');
    const upstreamImage = upstreamTools.tools.find((x) => x.name === 'image');
    expect(listed?.outputSchema).toEqual(upstreamImage?.outputSchema);
    expect(listed?.inputSchema).toEqual(upstreamImage?.inputSchema);

    const viaTollgate = await client.callTool({ name: 'fake__image', arguments: { label: 'dot' } });
    expect(withoutBudget(viaTollgate)).toEqual(upstreamResult);
    expect((viaTollgate.content as Array<{ type: string }>)[0].type).toBe('image');

    const rest = await restCall('fake__image', { label: 'dot' });
    expect(rest.status).toBe(200);
    expect(withoutBudget(rest.body)).toEqual(upstreamResult);
  });

  it('a call outside the scope never reaches the upstream and is audited as mcp_tool.call_denied', async () => {
    const { id, token } = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__echo'] } });
    const client = await connect(token);
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['fake__echo']);
    const before = fake.callCount('slow');
    const err = await client.callTool({ name: 'fake__slow', arguments: { ms: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(-32003);
    expect(err.data).toMatchObject({ code: 'forbidden_resource', tool: 'fake__slow' });
    const rest = await restCall('fake__slow', { ms: 1 }, token);
    expect(rest.status).toBe(403);
    expect(rest.body.code).toBe('forbidden_resource');
    expect(fake.callCount('slow')).toBe(before);

    await t.app.get(AuthEventsRecorder).drain(); // refusals are audited off the response path
    const rows = await t.db.query(
      `SELECT action, outcome, target_id, metadata FROM audit_events WHERE tenant_id = $1 AND action = 'mcp_tool.call_denied' AND metadata->>'key_id' = $2`,
      [tenant, id],
    );
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r).toMatchObject({ outcome: 'denied', target_id: 'fake__slow' });
  });

  it('an unknown tool inside the scope is McpError -32602 with data.code not_found, and nothing is forwarded', async () => {
    const client = await connect();
    const before = fake.methodCount('tools/call');
    const err = await client.callTool({ name: 'fake__nope', arguments: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(-32602);
    expect(err.data).toMatchObject({ code: 'not_found', tool: 'fake__nope' });
    const rest = await restCall('fake__nope', {});
    expect(rest.status).toBe(404);
    expect(rest.body.code).toBe('not_found');
    expect(fake.methodCount('tools/call')).toBe(before);
  });

  it('upstream failures leave mcp_tool.call_failed audit rows with outcome failure and the error code', async () => {
    const { id, token } = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    const client = await connect(token);
    await client.callTool({ name: 'fake__slow', arguments: { ms: 2000 } });
    await fake.stop();
    await client.callTool({ name: 'fake__echo', arguments: { message: 'down' } });
    await fake.start();
    const ok = await client.callTool({ name: 'fake__echo', arguments: { message: 'up' } });
    expect(ok.isError).toBeFalsy();

    await t.app.get(AuthEventsRecorder).drain(); // failures are audited off the response path
    const rows = await t.db.query(
      `SELECT outcome, target_id, metadata->>'code' AS code FROM audit_events
        WHERE tenant_id = $1 AND action = 'mcp_tool.call_failed' AND metadata->>'key_id' = $2 ORDER BY seq`,
      [tenant, id],
    );
    expect(rows).toEqual([
      { outcome: 'failure', target_id: 'fake__slow', code: 'upstream_timeout' },
      { outcome: 'failure', target_id: 'fake__echo', code: 'upstream_error' },
    ]);
  });
});

function isListening(fake: FakeUpstream): boolean {
  return (fake as unknown as { http: unknown }).http !== null;
}

/** Tollgate adds the caller's budget under _meta['io.tollgate/budget'] (M6); everything else is the upstream's. */
function budgetOf(result: Record<string, unknown>): unknown {
  return (result._meta as Record<string, unknown> | undefined)?.['io.tollgate/budget'];
}

function withoutBudget(result: Record<string, unknown>): Record<string, unknown> {
  const meta = { ...((result._meta as Record<string, unknown> | undefined) ?? {}) };
  delete meta['io.tollgate/budget'];
  const { _meta: _drop, ...rest } = result;
  return Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : rest;
}
