import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { MAX_UPSTREAM_RESPONSE_BYTES } from '../../src/mcp/infrastructure/sdk-upstream.connector';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

const TIMEOUT_MS = 10_000;

/**
 * How failures on the upstream leg are told apart: the upstream's own JSON-RPC
 * errors (whatever their code) from Tollgate's local timeouts and closed
 * sessions; a call that fails on its own from a session that fails; a session
 * the upstream lost (re-initialized at once) and a stdio process that exited.
 * Upstreams: a stateless JSON one, a stateful SSE one (sessions), and a stdio
 * one declared in UPSTREAMS_FILE (test/support/stdio-upstream.js).
 */
describe('Upstream errors and sessions (e2e, REST mirror and /mcp → Tollgate → JSON, SSE and stdio upstreams)', () => {
  let t: TestApp;
  let json: FakeUpstream;
  let sse: FakeUpstream;
  let baseUrl: string;
  let tenant: string;
  let admin: string;
  let key: string;
  const ids: Record<string, string> = {};
  const clients: Client[] = [];

  beforeAll(async () => {
    json = await new FakeUpstream().start();
    sse = await new FakeUpstream({ answer: 'sse' }).start();
    tenant = uniqueTenant('uperr');
    admin = managementToken({ tenantId: tenant });
    const file = join(process.env.DATA_DIR!, `upstreams-${tenant}.json`);
    const fixture = join(__dirname, '..', 'support', 'stdio-upstream.js');
    writeFileSync(
      file,
      JSON.stringify([
        { tenant_id: tenant, name: 'local', command: process.execPath, args: [fixture], timeout_ms: TIMEOUT_MS },
        // A short timeout, yet long enough for its process to start on a busy host (discovery runs with the first call).
        { tenant_id: tenant, name: 'quick', command: process.execPath, args: [fixture], timeout_ms: 3_000 },
      ]),
    );
    t = await createTestApp({ UPSTREAMS_FILE: file });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    await setPlan(t, tenant, 'enterprise');
    for (const [name, url] of [
      ['json', json.url],
      ['sse', sse.url],
      ['byst', json.url],
    ]) {
      const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name, url, timeout_ms: TIMEOUT_MS } });
      expect(reg.status).toBe(201);
      ids[name] = reg.body.id;
    }
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['*'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    t?.app.getHttpServer().closeAllConnections();
    await t?.close();
    await json?.stop();
    await sse?.stop();
  });

  function restCall(name: string, args: Record<string, unknown> = {}) {
    return t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key }, body: { arguments: args } });
  }

  async function viaMcp(): Promise<Client> {
    const client = new Client({ name: 'e2e-upstream-errors', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': key } } }));
    clients.push(client);
    return client;
  }

  const ledger = async () =>
    ((await t.db.query(`SELECT type FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`, [tenant])) as { type: string }[]).map((r) => r.type).filter((type) => type !== 'grant');

  const text = (body: { content: { text: string }[] }) => body.content[0].text;

  describe.each([
    ['json', () => json],
    ['sse', () => sse],
  ])("an upstream's own JSON-RPC error -32000 / -32001 (%s upstream)", (name, upstream) => {
    it("reaches the caller as the upstream's error with its code and message (REST 502, MCP McpError), keeps the session and does not open the circuit", async () => {
      expect((await restCall(`${name}__echo`, { message: 'warm' })).status).toBe(200);
      const inits = upstream().methodCount('initialize');
      const calls = upstream().callCount('boom');
      // More answers than the circuit's threshold (5): each is an answer, the upstream is alive.
      for (let i = 0; i < 6; i++) {
        const res = await restCall(`${name}__boom`, { code: -32000, message: 'backend database is down' });
        expect(res.status).toBe(502);
        expect(res.body.code).toBe('upstream_error');
        expect(res.body.detail).toBe(`The upstream MCP server "${name}" answered with an error: backend database is down`);
        expect(res.body.upstream_error).toEqual({ code: -32000, message: 'backend database is down' });
      }
      const locked = await restCall(`${name}__boom`, { code: -32001, message: 'account locked' });
      expect(locked.status).toBe(502); // not 504: nothing timed out
      expect(locked.body.upstream_error).toEqual({ code: -32001, message: 'account locked' });

      const client = await viaMcp();
      for (const [code, message] of [
        [-32000, 'backend database is down'],
        [-32001, 'account locked'],
      ] as const) {
        const err = await client.callTool({ name: `${name}__boom`, arguments: { code, message } }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(McpError);
        expect((err as McpError).code).toBe(code);
        expect((err as McpError).message).toContain(message);
      }
      expect(upstream().callCount('boom')).toBe(calls + 9);
      // The same session serves the next call: no new initialize, no open circuit.
      const next = await restCall(`${name}__echo`, { message: 'still here' });
      expect(next.status).toBe(200);
      expect(text(next.body)).toBe('echo: still here');
      expect(upstream().methodCount('initialize')).toBe(inits);
    });
  });

  it('one call failing on its own (an answer over the size cap) fails only that call: a call in flight on the same session goes on', async () => {
    expect((await restCall('json__echo', { message: 'warm' })).status).toBe(200);
    const inits = json.methodCount('initialize');
    const slowCalls = json.callCount('slow');
    const slow = restCall('json__slow', { ms: 3_000 });
    const reachedBy = Date.now() + TIMEOUT_MS;
    while (json.callCount('slow') === slowCalls && Date.now() < reachedBy) await new Promise((r) => setTimeout(r, 10));
    expect(json.callCount('slow')).toBe(slowCalls + 1);

    const huge = await restCall('json__huge', { bytes: MAX_UPSTREAM_RESPONSE_BYTES + 1_024 });
    expect(huge.status).toBe(502);
    expect(huge.body.detail).toContain(`larger than ${MAX_UPSTREAM_RESPONSE_BYTES} bytes`);

    const slept = await slow;
    expect(slept.status).toBe(200);
    expect(text(slept.body)).toBe('slept 3000 ms');
    expect(json.methodCount('initialize')).toBe(inits);
  }, 30_000);

  it('calls ended because Tollgate dropped their session (the upstream refreshed) fail, refunded, but are no verdict on the upstream: its circuit stays closed', async () => {
    expect((await restCall('byst__echo', { message: 'warm' })).status).toBe(200);
    const slowCalls = json.callCount('slow');
    const before = (await ledger()).length;
    // As many calls as the circuit's threshold (5), all in flight when the session is dropped.
    const calls = Array.from({ length: 5 }, () => restCall('byst__slow', { ms: 3_000 }));
    const reachedBy = Date.now() + TIMEOUT_MS;
    while (json.callCount('slow') < slowCalls + 5 && Date.now() < reachedBy) await new Promise((r) => setTimeout(r, 10));
    expect(json.callCount('slow')).toBe(slowCalls + 5);
    const refresh = await t.request({ method: 'POST', url: `/api/v1/mcp/servers/${ids.byst}/refresh`, token: admin });
    expect([200, 201]).toContain(refresh.status);
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(502);
      expect(res.body.detail).toContain('connection closed');
    }
    // Refunded, as a call the upstream did not serve.
    expect((await ledger()).slice(before).sort()).toEqual([...Array(5).fill('charge'), ...Array(5).fill('refund')]);
    const next = await restCall('byst__echo', { message: 'circuit closed' });
    expect(next.status).toBe(200);
    expect(text(next.body)).toBe('echo: circuit closed');
  }, 30_000);

  it('a session the upstream lost (a restarted stateful upstream answers 404) is re-initialized and the call sent again, once, transparently: charged once, never refunded', async () => {
    expect((await restCall('sse__echo', { message: 'warm' })).status).toBe(200);
    const inits = sse.methodCount('initialize');
    const echoes = sse.callCount('echo');
    const before = (await ledger()).length;
    await sse.restart();

    const res = await restCall('sse__echo', { message: 'after the restart' });
    expect(res.status).toBe(200);
    expect(text(res.body)).toBe('echo: after the restart');
    expect(sse.methodCount('initialize')).toBe(inits + 1);
    expect(sse.callCount('echo')).toBe(echoes + 2); // the one refused with 404, and the one sent again
    expect((await ledger()).slice(before)).toEqual(['charge']);
    const again = await restCall('sse__echo', { message: 'and again' });
    expect(text(again.body)).toBe('echo: and again');
    expect(sse.methodCount('initialize')).toBe(inits + 1);
  });

  describe('stdio upstream', () => {
    const pid = async () => {
      const res = await restCall('local__pid');
      expect(res.status).toBe(200);
      return Number(text(res.body));
    };

    it("an upstream's JSON-RPC error -32000 / -32001 is its error (not a closed connection or a timeout), and the process goes on", async () => {
      const first = await pid();
      for (const [code, message] of [
        [-32000, 'backend database is down'],
        [-32001, 'account locked'],
      ] as const) {
        const res = await restCall('local__rpc_error', { code, message });
        expect(res.status).toBe(502);
        expect(res.body.upstream_error).toEqual({ code, message });
      }
      expect(await pid()).toBe(first);
    }, 30_000);

    it("a call past the stdio upstream's timeout_ms is upstream_timeout (Tollgate's timer), and the process serves the next call", async () => {
      const started = Date.now();
      const res = await restCall('quick__slow', { ms: 8_000 });
      expect(res.status).toBe(504);
      expect(res.body.code).toBe('upstream_timeout');
      expect(res.body.timeout_ms).toBe(3_000);
      expect(Date.now() - started).toBeLessThan(6_000);
      const next = await restCall('quick__echo', { message: 'next' });
      expect(text(next.body)).toBe('echo: next');
    }, 30_000);

    it('a process that exits while idle is replaced by the next call', async () => {
      const first = await pid();
      process.kill(first, 'SIGKILL');
      const goneBy = Date.now() + 5_000;
      while (isAlive(first) && Date.now() < goneBy) await new Promise((r) => setTimeout(r, 20));
      expect(isAlive(first)).toBe(false);
      await new Promise((r) => setTimeout(r, 100)); // the transport sees the process close

      const res = await restCall('local__echo', { message: 'new process' });
      expect(res.status).toBe(200);
      expect(text(res.body)).toBe('echo: new process');
      expect(await pid()).not.toBe(first);
    }, 30_000);

    it('an answer between 10 and 16 MiB comes back whole; one over 16 MiB is upstream_error "larger than", and the next call works', async () => {
      const bytes = 12 * 1024 * 1024;
      const big = await restCall('local__huge', { bytes });
      expect(big.status).toBe(200);
      expect(text(big.body)).toHaveLength(bytes);

      const huge = await restCall('local__huge', { bytes: MAX_UPSTREAM_RESPONSE_BYTES + 1_024 });
      expect(huge.status).toBe(502);
      expect(huge.body.code).toBe('upstream_error');
      expect(huge.body.detail).toContain(`larger than ${MAX_UPSTREAM_RESPONSE_BYTES} bytes`);

      const next = await restCall('local__echo', { message: 'after the huge one' });
      expect(next.status).toBe(200);
      expect(text(next.body)).toBe('echo: after the huge one');
    }, 60_000);
  });

  it("tools/list passes the upstream's icons, execution and _meta through, without the _meta keys the MCP specification reserves", async () => {
    const client = await viaMcp();
    const { tools } = await client.listTools();
    const echo = tools.find((x) => x.name === 'local__echo');
    expect(echo?.icons).toEqual([{ src: 'https://example.com/echo.png', mimeType: 'image/png', sizes: ['48x48'] }]);
    expect(echo?.execution).toEqual({ taskSupport: 'forbidden' });
    expect(echo?._meta).toEqual({ 'example.com/owner': 'team-a' });
    // A registered (HTTP) upstream's tools are stored with theirs: McpServer lists execution and the tool's _meta.
    const image = tools.find((x) => x.name === 'json__image');
    expect(image?.execution).toEqual({ taskSupport: 'forbidden' });
    expect(image?._meta).toEqual({ 'example.com/card': 'pixel' });
    const stored = await t.db.query(`SELECT tools FROM mcp_servers WHERE tenant_id = $1 AND name = 'json'`, [tenant]);
    const row = (stored[0].tools as { name: string; _meta?: unknown }[]).find((x) => x.name === 'image');
    expect(row?._meta).toEqual({ 'example.com/card': 'pixel', 'io.modelcontextprotocol/ui': { resourceUri: 'ui://image' } });
    // The REST mirror shows the same (snake_case: `meta`).
    const rest = await t.request({ method: 'GET', url: '/api/v1/mcp/tools/local__echo', headers: { 'x-api-key': key } });
    expect(rest.body).toMatchObject({ icons: echo?.icons, execution: { taskSupport: 'forbidden' }, meta: { 'example.com/owner': 'team-a' } });
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
