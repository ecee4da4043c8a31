import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { AuthEventsRecorder } from '../../src/auth/auth-events.recorder';
import { createTestApp, TestApp } from '../support/create-test-app';
import { EverythingUpstream } from '../support/everything-upstream';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

describe('MCP gateway (e2e, SDK client → Tollgate → server-everything)', () => {
  let t: TestApp;
  let upstream: EverythingUpstream;
  let baseUrl: string;
  let tenant: string;
  let admin: string;

  beforeAll(async () => {
    upstream = await new EverythingUpstream().start();
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    tenant = uniqueTenant();
    admin = managementToken({ tenantId: tenant });
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'everything', url: upstream.url } });
    expect(reg.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await upstream?.stop();
  });

  async function connect(key: string): Promise<Client> {
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': key } } }));
    return client;
  }

  it('registration discovered the upstream tools as <server>__<tool>', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/mcp/servers', token: admin });
    expect(res.status).toBe(200);
    const names = res.body.data[0].tools.map((x: { name: string }) => x.name);
    expect(names).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum']));
    for (const tool of res.body.data[0].tools) expect(tool.description.length).toBeGreaterThan(0);
  });

  it('key A scoped to everything__echo lists exactly that tool and calls it', async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['everything__echo'] } });
    const client = await connect(key.token);
    const list = await client.listTools();
    expect(list.tools.map((x) => x.name)).toEqual(['everything__echo']);
    const result = await client.callTool({ name: 'everything__echo', arguments: { message: 'hello' } });
    expect(JSON.stringify(result.content)).toContain('hello');
    await client.close();
  });

  it("M7: an MCP client that asks for progress gets server-everything's progress notifications as the tool runs, then the result", async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['everything__trigger-long-running-operation'] } });
    const client = await connect(key.token);
    try {
      const progress: { progress: number; total?: number }[] = [];
      let firstProgressAt = 0;
      // Steps of 500 ms: progress that arrives as it happens comes ~1 s before the result, not with it.
      const result = await client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 1.5, steps: 3 } }, undefined, {
        onprogress: (p) => {
          firstProgressAt ||= Date.now();
          progress.push(p);
        },
      });
      expect(Date.now() - firstProgressAt).toBeGreaterThanOrEqual(200);
      expect(progress).toEqual([1, 2, 3].map((i) => ({ progress: i, total: 3 })));
      expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    } finally {
      await client.close();
    }
  });

  it('key B with everything__* minus a deny sees all but the denied tool; the denied call is refused and audited', async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['everything__*'], deny: { mcp_tool_ids: ['everything__get-sum'] } } });
    const client = await connect(key.token);
    const names = (await client.listTools()).tools.map((x) => x.name);
    expect(names).toContain('everything__echo');
    expect(names).not.toContain('everything__get-sum');
    const err = await client.callTool({ name: 'everything__get-sum', arguments: { a: 1, b: 2 } }).catch((e) => e);
    expect(err).toBeInstanceOf(McpError);
    expect(err.data).toMatchObject({ code: 'forbidden_resource', matched_rule: 'deny.mcp_tool_ids:everything__get-sum' });
    await t.app.get(AuthEventsRecorder).drain(); // refusals are audited off the response path
    const rows = await t.db.query(`SELECT action, outcome, target_id FROM audit_events WHERE tenant_id = $1 AND action = 'mcp_tool.call_denied'`, [tenant]);
    expect(rows).toEqual(expect.arrayContaining([{ action: 'mcp_tool.call_denied', outcome: 'denied', target_id: 'everything__get-sum' }]));
    await client.close();
  });

  it('revoking a key makes its next MCP request in an open session fail with 401', async () => {
    const key = await createKey(t, admin);
    const client = await connect(key.token);
    await client.listTools();
    const del = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, token: admin });
    expect(del.status).toBe(204);
    const err = await client.listTools().catch((e) => e);
    expect(String(err)).toMatch(/401/);
    await client.close().catch(() => undefined);
  });

  it('REST mirror makes the same decisions', async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['everything__echo'] } });
    const h = { 'x-api-key': key.token };
    const list = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: h });
    expect(list.status).toBe(200);
    expect(list.body.data.map((x: { name: string }) => x.name)).toEqual(['everything__echo']);
    // The body is served from a pre-serialized string: still JSON, and still this key's view.
    expect(list.headers['content-type']).toBe('application/json; charset=utf-8');
    const again = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: h });
    expect(again.body).toEqual(list.body);
    const wider = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['everything__echo', 'everything__get-sum'] } });
    const widerList = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': wider.token } });
    expect(widerList.body.data.map((x: { name: string }) => x.name)).toEqual(['everything__echo', 'everything__get-sum']);
    const call = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/everything__echo/call', headers: h, body: { arguments: { message: 'rest' } } });
    expect(call.status).toBe(200);
    expect(JSON.stringify(call.body.content)).toContain('rest');
    const denied = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/everything__get-sum/call', headers: h, body: { arguments: { a: 1, b: 2 } } });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('forbidden_resource');
    const missing = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: {} });
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe('missing_key');
    expect(String(missing.headers['www-authenticate'])).toContain('resource_metadata=');
  });

  it('refuses to register hosts outside UPSTREAM_ALLOWED_HOSTS', async () => {
    for (const url of ['http://169.254.169.254/', 'http://internal.example.com/mcp', 'file:///etc/passwd']) {
      const res = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'evil', url } });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
    }
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM mcp_servers WHERE tenant_id = $1 AND name = 'evil'`, [tenant]);
    expect(rows[0].n).toBe(0);
  });
});
