import { writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { join } from 'node:path';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

/** Operators declare upstreams in UPSTREAMS_FILE, including stdio commands that REST can never register. */
describe('Operator-declared upstreams (UPSTREAMS_FILE, stdio)', () => {
  let t: TestApp;
  const tenant = uniqueTenant();
  const admin = managementToken({ tenantId: tenant });

  beforeAll(async () => {
    const entry = join(__dirname, '..', '..', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
    const file = join(process.env.DATA_DIR!, `upstreams-${tenant}.json`);
    writeFileSync(file, JSON.stringify([{ tenant_id: '*', name: 'local', command: process.execPath, args: [entry, 'stdio'], timeout_ms: 20000 }]));
    t = await createTestApp({ UPSTREAMS_FILE: file });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it('exposes the stdio server tools to keys whose scope allows them, and calls them', async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['local__echo'] } });
    const h = { 'x-api-key': key.token };
    const list = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: h });
    expect(list.status).toBe(200);
    expect(list.body.data.map((x: { name: string }) => x.name)).toEqual(['local__echo']);
    const call = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/local__echo/call', headers: h, body: { arguments: { message: 'via stdio' } } });
    expect(call.status).toBe(200);
    expect(JSON.stringify(call.body.content)).toContain('via stdio');
  }, 60_000);

  it('relays the progress a stdio upstream reports to an MCP client that asks for it (M7)', async () => {
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['local__trigger-long-running-operation'] } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    const url = new URL(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`);
    const client = new Client({ name: 'e2e-stdio', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { 'X-API-Key': key.token } } }));
    try {
      const progress: unknown[] = [];
      const result = await client.callTool({ name: 'local__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, {
        onprogress: (p) => progress.push(p),
      });
      expect(progress).toEqual([1, 2, 3].map((i) => ({ progress: i, total: 3 })));
      expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    } finally {
      await client.close();
    }
  }, 60_000);

  it('refuses to register an upstream under a name the operator declared (409) and never accepts stdio over REST', async () => {
    const dup = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'local', url: 'http://127.0.0.1:1/mcp' } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('duplicate_name');
    const stdio = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'shell', command: '/bin/sh' } });
    expect(stdio.status).toBe(422);
    const rows = await t.db.query(`SELECT count(*)::int AS n FROM mcp_servers WHERE tenant_id = $1`, [tenant]);
    expect(rows[0].n).toBe(0);
  });
});
