import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant, setPlan } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/**
 * What real MCP clients put on the wire, sent by hand with fetch against the
 * listening app: Streamable HTTP (stateless, JSON responses), its headers and
 * status codes, and Tollgate's own credential and Origin checks.
 */
describe('MCP protocol over raw HTTP (e2e)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let baseUrl: string;
  let tenant: string;
  let admin: string;
  let key: string;

  const ACCEPT = 'application/json, text/event-stream';

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    tenant = uniqueTenant('proto');
    admin = managementToken({ tenantId: tenant });
    // Many requests from one key in a minute: a plan whose rate limit this suite does not test.
    await setPlan(t, tenant, 'enterprise');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__echo'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  let nextId = 1;
  function rpc(method: string, params?: Record<string, unknown>) {
    return { jsonrpc: '2.0', id: nextId++, method, ...(params ? { params } : {}) };
  }

  const INIT_PARAMS = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-e2e', version: '1.0.0' } };

  async function post(
    body: unknown,
    opts: { path?: string; headers?: Record<string, string>; auth?: 'x-api-key' | 'bearer' | 'none'; key?: string } = {},
  ): Promise<{ status: number; headers: Headers; text: string; json: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: ACCEPT, ...(opts.headers ?? {}) };
    const auth = opts.auth ?? 'x-api-key';
    const k = opts.key ?? key;
    if (auth === 'x-api-key') headers['x-api-key'] = k;
    if (auth === 'bearer') headers.authorization = `Bearer ${k}`;
    const res = await fetch(`${baseUrl}${opts.path ?? '/mcp'}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** Headers a client sends after initialize. */
  const AFTER_INIT = { 'mcp-protocol-version': '2025-11-25' };

  it('initialize → 200 JSON with protocol 2025-11-25, serverInfo tollgate, tools capability; no session id', async () => {
    const res = await post(rpc('initialize', INIT_PARAMS));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(res.json.result.protocolVersion).toBe('2025-11-25');
    expect(res.json.result.serverInfo.name).toBe('tollgate');
    expect(res.json.result.capabilities.tools).toBeDefined();
  });

  it('an older supported protocol version is negotiated down to what the client asked for', async () => {
    const res = await post(rpc('initialize', { ...INIT_PARAMS, protocolVersion: '2025-06-18' }));
    expect(res.status).toBe(200);
    expect(res.json.result.protocolVersion).toBe('2025-06-18');
  });

  it('notifications/initialized → 202 with no body', async () => {
    const res = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { headers: AFTER_INIT });
    expect(res.status).toBe(202);
    expect(res.text).toBe('');
    expect(res.headers.get('mcp-session-id')).toBeNull();
  });

  it('ping → result {}', async () => {
    const req = rpc('ping');
    const res = await post(req, { headers: AFTER_INIT });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ jsonrpc: '2.0', id: req.id, result: {} });
  });

  it('tools/list and tools/call work without initialize on the same connection (stateless)', async () => {
    const list = await post(rpc('tools/list'), { headers: AFTER_INIT });
    expect(list.status).toBe(200);
    expect(list.json.result.tools.map((x: { name: string }) => x.name)).toEqual(['fake__echo']);
    // SEP-2549 (MCP 2026-07-28): the list is per key, so never to be shared across callers.
    expect(list.json.result).toMatchObject({ cacheScope: 'private', ttlMs: 60_000 });
    const call = await post(rpc('tools/call', { name: 'fake__echo', arguments: { message: 'raw' } }), { headers: AFTER_INIT });
    expect(call.status).toBe(200);
    expect(call.json.result.content).toEqual([{ type: 'text', text: 'echo: raw' }]);
    expect(call.headers.get('mcp-session-id')).toBeNull();
  });

  it('an unsupported MCP-Protocol-Version header → 400', async () => {
    const res = await post(rpc('tools/list'), { headers: { 'mcp-protocol-version': '1999-01-01' } });
    expect(res.status).toBe(400);
    expect(res.text).toContain('1999-01-01');
  });

  it('Accept: text/html → 406', async () => {
    const res = await post(rpc('tools/list'), { headers: { accept: 'text/html', ...AFTER_INIT } });
    expect(res.status).toBe(406);
  });

  it('a foreign Origin → 403 problem+json forbidden (DNS-rebinding protection), and nothing is executed', async () => {
    const before = fake.callCount('echo');
    const res = await post(rpc('tools/call', { name: 'fake__echo', arguments: { message: 'evil' } }), {
      headers: { origin: 'https://evil.example', ...AFTER_INIT },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.json.code).toBe('forbidden');
    expect(res.json.status).toBe(403);
    expect(fake.callCount('echo')).toBe(before);
  });

  it('the PUBLIC_URL Origin is accepted', async () => {
    const res = await post(rpc('ping'), { headers: { origin: 'http://tollgate.test', ...AFTER_INIT } });
    expect(res.status).toBe(200);
    expect(res.json.result).toEqual({});
  });

  it.each(['GET', 'DELETE'])('%s /mcp → 405 with Allow: POST', async (method) => {
    const res = await fetch(`${baseUrl}/mcp`, { method, headers: { 'x-api-key': key, accept: ACCEPT, ...AFTER_INIT } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(res.headers.get('mcp-session-id')).toBeNull();
  });

  it('the /api/v1/mcp alias speaks the same protocol', async () => {
    const init = await post(rpc('initialize', INIT_PARAMS), { path: '/api/v1/mcp' });
    expect(init.status).toBe(200);
    expect(init.json.result.serverInfo.name).toBe('tollgate');
    const list = await post(rpc('tools/list'), { path: '/api/v1/mcp', headers: AFTER_INIT });
    expect(list.json.result.tools.map((x: { name: string }) => x.name)).toEqual(['fake__echo']);
  });

  it('Authorization: Bearer <key> works as well as X-API-Key', async () => {
    const res = await post(rpc('tools/list'), { auth: 'bearer', headers: AFTER_INIT });
    expect(res.status).toBe(200);
    expect(res.json.result.tools.map((x: { name: string }) => x.name)).toEqual(['fake__echo']);
  });

  it('no key → 401 problem+json with WWW-Authenticate pointing at the resource metadata', async () => {
    const res = await post(rpc('initialize', INIT_PARAMS), { auth: 'none' });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.json.code).toBe('missing_key');
    const www = res.headers.get('www-authenticate') ?? '';
    expect(www).toMatch(/^Bearer /);
    expect(www).toContain('resource_metadata="http://tollgate.test/.well-known/oauth-protected-resource/mcp"');
    expect(www).not.toContain('invalid_token');
  });

  it('a wrong key → 401 invalid_key with error="invalid_token"', async () => {
    const res = await post(rpc('tools/list'), { auth: 'bearer', key: 'tg_not_a_real_key', headers: AFTER_INIT });
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('invalid_key');
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('a disabled key → 401 disabled_key on its next request', async () => {
    const k = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__echo'] } });
    const ok = await post(rpc('tools/list'), { key: k.token, headers: AFTER_INIT });
    expect(ok.status).toBe(200);
    const patch = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } });
    expect(patch.status).toBe(200);
    const res = await post(rpc('tools/list'), { key: k.token, headers: AFTER_INIT });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.json.code).toBe('disabled_key');
    expect(res.headers.get('www-authenticate')).toContain('resource_metadata=');
    const bearer = await post(rpc('ping'), { auth: 'bearer', key: k.token, headers: AFTER_INIT });
    expect(bearer.status).toBe(401);
    expect(bearer.json.code).toBe('disabled_key');
  });

  it('tools/call without a name → JSON-RPC invalid params error, nothing forwarded', async () => {
    const before = fake.methodCount('tools/call');
    const req = rpc('tools/call', { arguments: { message: 'x' } });
    const res = await post(req, { headers: AFTER_INIT });
    expect(res.json.jsonrpc).toBe('2.0');
    expect(res.json.id).toBe(req.id);
    expect(res.json.result).toBeUndefined();
    expect(res.json.error.code).toBe(-32602);
    for (const bad of [rpc('tools/call'), rpc('tools/call', { name: 42 }), rpc('tools/call', { name: 'fake__echo', arguments: 'x' })]) {
      const r = await post(bad, { headers: AFTER_INIT });
      expect(r.json.id).toBe(bad.id);
      expect(r.json.error.code).toBe(-32602);
    }
    expect(fake.methodCount('tools/call')).toBe(before);
  });

  it('an unknown method → JSON-RPC method not found', async () => {
    const req = rpc('resources/list');
    const res = await post(req, { headers: AFTER_INIT });
    expect(res.json.id).toBe(req.id);
    expect(res.json.error.code).toBe(-32601);
  });

  it('a body that is not JSON-RPC → 400 parse/invalid request error', async () => {
    const res = await fetch(`${baseUrl}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: ACCEPT, 'x-api-key': key, ...AFTER_INIT },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(res.status).toBe(400);
    const json = (await res.json()) as any;
    expect(json.jsonrpc).toBe('2.0');
    expect([-32700, -32600]).toContain(json.error.code);
  });

  describe('SEP-2243 mirrored headers (Mcp-Method, Mcp-Name)', () => {
    it('headers that match the body (Mcp-Name plain or Base64) are accepted', async () => {
      const plain = await post(rpc('tools/call', { name: 'fake__echo', arguments: { message: 'h1' } }), {
        headers: { ...AFTER_INIT, 'mcp-method': 'tools/call', 'mcp-name': 'fake__echo' },
      });
      expect(plain.status).toBe(200);
      expect(plain.json.result.content).toEqual([{ type: 'text', text: 'echo: h1' }]);
      const b64 = await post(rpc('tools/call', { name: 'fake__echo', arguments: { message: 'h2' } }), {
        headers: { ...AFTER_INIT, 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('fake__echo').toString('base64')}?=` },
      });
      expect(b64.status).toBe(200);
      expect((await post(rpc('tools/list'), { headers: { ...AFTER_INIT, 'mcp-method': 'tools/list' } })).status).toBe(200);
    });

    it('headers that contradict the body, or come with a batch → 400 with JSON-RPC error -32020 (HeaderMismatch); nothing forwarded or counted', async () => {
      const before = fake.methodCount('tools/call');
      const quota = async () => Number((await t.db.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM quota_counters WHERE tenant_id = $1`, [tenant]))[0].n);
      const quotaBefore = await quota();
      const contradictions: Record<string, string>[] = [
        { 'mcp-method': 'tools/list' },
        { 'mcp-method': 'tools/call', 'mcp-name': 'fake__other' },
        { 'mcp-name': '=?base64?%%%?=' },
        { 'mcp-name': `=?base64?${Buffer.from('fake__echo').toString('base64').replace(/=+$/, '')}?=` }, // unpadded
      ];
      for (const headers of contradictions) {
        const req = rpc('tools/call', { name: 'fake__echo', arguments: { message: 'no' } });
        const res = await post(req, { headers: { ...AFTER_INIT, ...headers } });
        expect(res.status).toBe(400);
        expect(res.json).toMatchObject({ jsonrpc: '2.0', id: req.id, error: { code: -32020 } });
        expect(res.json.error.message).toMatch(/^Header mismatch: /);
      }
      // A notification carries its method too: one the header contradicts is refused (id null: it has none).
      const note = await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 42 } }, { headers: { ...AFTER_INIT, 'mcp-method': 'tools/call', 'mcp-name': 'fake__echo' } });
      expect(note.status).toBe(400);
      expect(note.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32020 } });
      const batch = await post([rpc('tools/call', { name: 'fake__echo', arguments: { message: 'batched' } })], {
        headers: { ...AFTER_INIT, 'mcp-method': 'tools/list' },
      });
      expect(batch.status).toBe(400);
      expect(batch.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32020 } });
      expect(fake.methodCount('tools/call')).toBe(before);
      expect(await quota()).toBe(quotaBefore);
    });

    it('Tollgate mirrors the method and the upstream tool name on the tools/call it sends upstream', async () => {
      const seen = fake.requestHeaders.length;
      const res = await post(rpc('tools/call', { name: 'fake__echo', arguments: { message: 'mirror' } }), { headers: AFTER_INIT });
      expect(res.status).toBe(200);
      const sent = fake.requestHeaders.slice(seen).filter((h) => h['mcp-method'] === 'tools/call');
      expect(sent).toHaveLength(1);
      expect(sent[0]['mcp-name']).toBe('echo');
    });
  });
});
