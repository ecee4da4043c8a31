import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AuthEventsRecorder, UNKNOWN_TENANT } from '../../src/auth/auth-events.recorder';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';
import { FakeJwks, startFakeJwks } from '../support/fake-jwks';
import { FakeUpstream } from '../support/fake-upstream';

const PUBLIC_URL = 'http://tollgate.test'; // test/support/env.ts
const RESOURCE = `${PUBLIC_URL}/mcp`;
const METADATA_URL = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
const ACCEPT = 'application/json, text/event-stream';

/** A minimal authorization server: RFC 8414 metadata naming the fake JWKS (discovered: OAUTH_JWKS_URI unset). */
async function startAuthorizationServer(jwksUri: string): Promise<{ issuer: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  let issuer = '';
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') {
      hits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          issuer,
          jwks_uri: jwksUri,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code', 'client_credentials'],
          code_challenge_methods_supported: ['S256'],
          scopes_supported: ['mcp:tools'],
        }),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('OAuth 2.1 resource server for MCP clients (A5) and discovery (A6) (e2e)', () => {
  let t: TestApp;
  let jwks: FakeJwks;
  let as: Awaited<ReturnType<typeof startAuthorizationServer>>;
  let fake: FakeUpstream;
  let baseUrl: string;
  let tenant: string;
  let admin: string;
  const clients: Client[] = [];
  /** Every credential presented in this suite: none may reach an upstream, a log row or an audit row. */
  const presented: string[] = [];

  function token(claims: Record<string, unknown> = {}, opts: Parameters<FakeJwks['sign']>[1] = { alg: 'RS256' }): string {
    const tk = jwks.sign({ iss: as.issuer, aud: RESOURCE, sub: 'alice', tenant_id: tenant, scope: 'mcp:tools', ...claims }, opts);
    presented.push(tk);
    return tk;
  }

  async function mcpPost(
    bearer: string | null,
    body: unknown,
    opts: { path?: string; requestId?: string } = {},
  ): Promise<{ status: number; headers: Headers; json: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: ACCEPT };
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    const res = await fetch(`${baseUrl}${opts.path ?? '/mcp'}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  }

  const INIT = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oauth-e2e', version: '1.0.0' } },
  };

  async function connect(bearer: string): Promise<Client> {
    const client = new Client({ name: 'oauth-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } }));
    clients.push(client);
    return client;
  }

  async function auditRows(where: string, params: unknown[]): Promise<any[]> {
    await t.app.get(AuthEventsRecorder).drain();
    return t.db.query(`SELECT * FROM audit_events WHERE ${where} ORDER BY seq`, params);
  }

  beforeAll(async () => {
    jwks = await startFakeJwks();
    as = await startAuthorizationServer(jwks.jwksUri);
    fake = await new FakeUpstream().start();
    t = await createTestApp({ OAUTH_ISSUER: as.issuer });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    tenant = uniqueTenant('oauth');
    admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'enterprise');
    for (const name of ['fake', 'other']) {
      const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name, url: fake.url } });
      expect(reg.status).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t?.close();
    await fake?.stop();
    await as?.close();
    await jwks?.close();
  });

  describe('access tokens on /mcp', () => {
    it('an SDK client with a valid token (mcp:tools) lists and calls tools; the upstream never sees the token', async () => {
      const bearer = token();
      const client = await connect(bearer);
      const { tools } = await client.listTools();
      const names = tools.map((x) => x.name);
      expect(names).toEqual(expect.arrayContaining(['fake__echo', 'other__echo']));
      const result = await client.callTool({ name: 'fake__echo', arguments: { message: 'via oauth' } });
      expect(result.content).toEqual([{ type: 'text', text: 'echo: via oauth' }]);

      expect(fake.requestHeaders.length).toBeGreaterThan(0);
      for (const h of fake.requestHeaders) {
        expect(h.authorization).toBeUndefined();
        expect(JSON.stringify(h)).not.toContain(bearer);
      }
    });

    it('an ES256 token works too (REST mirror), and rate limits count per subject across tokens', async () => {
      const a = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', token: token({ sub: 'carol' }, { alg: 'ES256' }) });
      expect(a.status).toBe(200);
      const b = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', token: token({ sub: 'carol', jti: randomUUID() }) });
      expect(b.status).toBe(200);
      expect(Number(b.headers['x-ratelimit-remaining'])).toBe(Number(a.headers['x-ratelimit-remaining']) - 1);
      const other = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', token: token({ sub: 'dave' }) });
      expect(Number(other.headers['x-ratelimit-remaining'])).toBe(Number(a.headers['x-ratelimit-remaining']));
    });

    it('usage and credits of an OAuth caller are recorded under its subject id (a uuid)', async () => {
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/mcp/tools/fake__echo/call',
        token: token({ sub: 'erin' }),
        body: { arguments: { message: 'metered' } },
      });
      expect(res.status).toBe(200);
      const rows = await t.db.query(`SELECT key_id FROM credit_transactions WHERE tenant_id = $1 AND type = 'charge' AND tool = 'fake__echo'`, [tenant]);
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect(r.key_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it('mcp:tools:fake sees and calls only fake__*', async () => {
      const bearer = token({ scope: 'openid mcp:tools:fake' });
      const client = await connect(bearer);
      const { tools } = await client.listTools();
      expect(tools.length).toBeGreaterThan(0);
      expect(tools.every((x) => x.name.startsWith('fake__'))).toBe(true);
      const denied = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/other__echo/call', token: bearer, body: { arguments: { message: 'x' } } });
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('forbidden_resource');
    });

    it('a valid token without any mcp scope → 403 insufficient_scope with the RFC 6750 challenge, audited as authz.denied', async () => {
      const requestId = `scope-${randomUUID()}`;
      const res = await mcpPost(token({ sub: 'frank', scope: 'openid profile' }), INIT, { requestId });
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.json.code).toBe('insufficient_scope');
      const www = res.headers.get('www-authenticate') ?? '';
      expect(www).toMatch(/^Bearer /);
      expect(www).toContain('error="insufficient_scope"');
      expect(www).toContain('scope="mcp:tools"');
      expect(www).toContain(`resource_metadata="${METADATA_URL}"`);
      const rows = await auditRows('request_id = $1', [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ tenant_id: tenant, action: 'authz.denied', outcome: 'denied', actor_type: 'user', actor_id: 'frank' });
      expect(rows[0].metadata).toMatchObject({ reason: 'insufficient_scope', credential: 'oauth_token' });
    });

    const refusals: [string, () => string, string][] = [
      ['a token for another resource (RFC 8707 audience)', () => token({ aud: 'https://other-resource.example.com/mcp' }), 'wrong_audience'],
      ['an expired token', () => token({ exp: Math.floor(Date.now() / 1000) - 120 }), 'token_expired'],
      ['a token from another issuer', () => token({ iss: 'https://evil.example.com' }), 'wrong_issuer'],
      ['a token signed by an unpublished key', () => token({}, { alg: 'RS256', key: 'attacker-rsa', kid: jwks.kids.rsa }), 'invalid_signature'],
      ['a token with an unknown kid', () => token({}, { alg: 'ES256', key: 'attacker-ec' }), 'unknown_signing_key'],
      ['HS256 signed with the public key (algorithm confusion)', () => token({}, { alg: 'HS256', key: jwks.publicPem.rsa }), 'unsupported_algorithm'],
      ['an unsigned token (alg none)', () => token({}, { alg: 'none' }), 'unsupported_algorithm'],
      ['a token that is not valid yet (nbf)', () => token({ nbf: Math.floor(Date.now() / 1000) + 600 }), 'token_not_yet_valid'],
      ['a token without the tenant claim', () => token({ tenant_id: undefined }), 'invalid_tenant'],
    ];

    it.each(refusals)('%s → 401 with error="invalid_token" naming the metadata; audited without the token', async (_label, make, reason) => {
      const bearer = make();
      const requestId = `refused-${randomUUID()}`;
      const res = await mcpPost(bearer, INIT, { requestId });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.json).toMatchObject({ code: 'unauthenticated', reason });
      const www = res.headers.get('www-authenticate') ?? '';
      expect(www).toMatch(/^Bearer realm="tollgate", /);
      expect(www).toContain(`resource_metadata="${METADATA_URL}"`);
      expect(www).toContain('error="invalid_token"');
      expect(www).toContain('scope="mcp:tools"');

      const rows = await auditRows('request_id = $1', [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ tenant_id: UNKNOWN_TENANT, action: 'auth.failed', outcome: 'failure', target_type: 'route', target_id: 'POST /mcp' });
      expect(rows[0].metadata).toMatchObject({ reason, credential: 'oauth_token' });
      expect(rows[0].ip).toBeTruthy();
      expect(rows[0].user_agent).toBeTruthy();
      expect(JSON.stringify(rows[0])).not.toContain(bearer);
      expect(JSON.stringify(rows[0])).not.toContain(bearer.split('.')[2] || '\u0000');
    });

    it('an unauthenticated initialize gets 401 whose resource_metadata document exists', async () => {
      const res = await mcpPost(null, INIT);
      expect(res.status).toBe(401);
      expect(res.json.code).toBe('missing_key');
      const www = res.headers.get('www-authenticate') ?? '';
      expect(www).not.toContain('error=');
      const url = /resource_metadata="([^"]+)"/.exec(www)?.[1];
      expect(url).toBe(METADATA_URL);
      const doc = await t.request({ method: 'GET', url: url!.slice(PUBLIC_URL.length) });
      expect(doc.status).toBe(200);
      expect(doc.body.resource).toBe(RESOURCE);
    });

    it('/api/v1/mcp points at its own metadata document, and accepts tokens for that resource', async () => {
      const res = await mcpPost(null, INIT, { path: '/api/v1/mcp' });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain(`resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource/api/v1/mcp"`);
      const ok = await mcpPost(token({ aud: `${PUBLIC_URL}/api/v1/mcp` }), INIT, { path: '/api/v1/mcp' });
      expect(ok.status).toBe(200);
    });

    it('API keys keep working next to OAuth, as X-API-Key and as Bearer', async () => {
      const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
      presented.push(key.token);
      const viaHeader = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key.token } });
      expect(viaHeader.status).toBe(200);
      const viaBearer = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', token: key.token });
      expect(viaBearer.status).toBe(200);
      // A JWT in X-API-Key is never treated as an access token.
      const jwtAsKey = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': token() } });
      expect(jwtAsKey.status).toBe(401);
      expect(jwtAsKey.body.code).toBe('invalid_key');
    });
  });

  describe('L1: authentication failures and authorization denials', () => {
    it('a revoked key is audited in its own tenant; an unknown key on the _unknown chain; never the secret', async () => {
      const key = await createKey(t, admin);
      presented.push(key.token);
      const revoke = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, token: admin });
      expect([200, 204]).toContain(revoke.status);
      const revokedId = `revoked-${randomUUID()}`;
      const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key.token, 'x-request-id': revokedId } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('revoked_key');
      const [row] = await auditRows('request_id = $1', [revokedId]);
      expect(row).toMatchObject({ tenant_id: tenant, action: 'auth.failed', outcome: 'failure', actor_type: 'api_key', actor_id: key.id });
      expect(row.metadata).toMatchObject({ reason: 'revoked_key', credential: 'api_key', key_id: key.id });
      expect(JSON.stringify(row)).not.toContain(key.token);

      const bogus = `tg_live_${'A'.repeat(32)}000000`;
      const unknownId = `unknown-${randomUUID()}`;
      const res2 = await t.request({ method: 'GET', url: '/api/v1/mcp/tools/fake__echo', headers: { 'x-api-key': bogus, 'x-request-id': unknownId } });
      expect(res2.status).toBe(401);
      const [row2] = await auditRows('request_id = $1', [unknownId]);
      expect(row2).toMatchObject({ tenant_id: UNKNOWN_TENANT, action: 'auth.failed', actor_type: 'user', actor_id: 'anonymous', target_id: 'GET /api/v1/mcp/tools/:name' });
      expect(row2.metadata).toMatchObject({ reason: 'invalid_key' });
      expect(JSON.stringify(row2)).not.toContain(bogus);
    });

    it('a refused management JWT is audited on the _unknown chain (its tenant claim is untrusted)', async () => {
      const forged = managementToken({ tenantId: tenant, secret: 'another-secret-0123456789abcdef-0123456789' });
      presented.push(forged);
      const requestId = `mgmt-${randomUUID()}`;
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: forged, headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(401);
      const rows = await auditRows('request_id = $1', [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ tenant_id: UNKNOWN_TENANT, action: 'auth.failed', outcome: 'failure' });
      expect(rows[0].metadata).toMatchObject({ reason: 'invalid_signature', credential: 'management_jwt' });
      expect(JSON.stringify(rows[0])).not.toContain(forged);
    });

    it('a role denial (RolesGuard 403) is audited as authz.denied in the principal\'s tenant', async () => {
      const auditor = managementToken({ tenantId: tenant, sub: 'ann-auditor', roles: ['auditor'] });
      const requestId = `roles-${randomUUID()}`;
      const res = await t.request({ method: 'POST', url: '/api/v1/api-keys', token: auditor, headers: { 'x-request-id': requestId }, body: { name: 'nope', permission_scope: {} } });
      expect(res.status).toBe(403);
      const rows = await auditRows('request_id = $1', [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ tenant_id: tenant, action: 'authz.denied', outcome: 'denied', actor_type: 'user', actor_id: 'ann-auditor', target_id: 'POST /api/v1/api-keys' });
      expect(rows[0].metadata).toMatchObject({ reason: 'missing_role', roles: ['auditor'] });
    });

    it('no audit row anywhere holds a credential presented in this suite', async () => {
      await t.app.get(AuthEventsRecorder).drain();
      const rows: { doc: string }[] = await t.db.query(`SELECT row_to_json(e)::text AS doc FROM audit_events e`);
      expect(presented.length).toBeGreaterThan(10);
      for (const { doc } of rows) {
        for (const secret of presented) expect(doc.includes(secret)).toBe(false);
      }
    });
  });

  describe('discovery (RFC 9728, RFC 8414)', () => {
    it.each([
      ['/.well-known/oauth-protected-resource', RESOURCE],
      ['/.well-known/oauth-protected-resource/mcp', RESOURCE],
      ['/.well-known/oauth-protected-resource/api/v1/mcp', `${PUBLIC_URL}/api/v1/mcp`],
    ])('%s is public RFC 9728 JSON', async (url, resource) => {
      const res = await t.request({ method: 'GET', url });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        resource,
        authorization_servers: [as.issuer],
        scopes_supported: ['mcp:tools'],
        bearer_methods_supported: ['header'],
        resource_name: 'Tollgate',
      });
    });

    it('/.well-known/oauth-authorization-server surfaces the configured issuer\'s metadata (fetched once, cached)', async () => {
      const before = as.hits();
      const a = await t.request({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
      const b = await t.request({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ issuer: as.issuer, jwks_uri: jwks.jwksUri, token_endpoint: `${as.issuer}/token` });
      expect(b.body).toEqual(a.body);
      // Already read to discover jwks_uri for the first token; the cache serves both.
      expect(as.hits()).toBe(before);
    });
  });

  describe('with OAuth off', () => {
    let off: TestApp;

    beforeAll(async () => {
      off = await createTestApp({ OAUTH_ISSUER: undefined });
    });

    afterAll(async () => {
      await off?.close();
    });

    it('the authorization-server document is 404 problem+json; the resource document has no authorization_servers', async () => {
      const asDoc = await off.request({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
      expect(asDoc.status).toBe(404);
      expect(asDoc.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(asDoc.body.code).toBe('not_found');
      const pr = await off.request({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp' });
      expect(pr.status).toBe(200);
      expect(pr.body.resource).toBe(RESOURCE);
      expect(pr.body).not.toHaveProperty('authorization_servers');
    });

    it('a JWT bearer is just an invalid API key, and 401s name no scope', async () => {
      const res = await off.request({ method: 'GET', url: '/api/v1/mcp/tools', token: token() });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_key');
      expect(String(res.headers['www-authenticate'])).not.toContain('scope=');
    });
  });

  describe('explicit OAUTH_JWKS_URI, OAUTH_AUDIENCE and OAUTH_TENANT_CLAIM', () => {
    let custom: TestApp;
    const ISSUER = 'https://as.unreachable.invalid';
    const AUDIENCE = 'https://mcp.example.com/gateway';

    beforeAll(async () => {
      custom = await createTestApp({ OAUTH_ISSUER: ISSUER, OAUTH_JWKS_URI: jwks.jwksUri, OAUTH_AUDIENCE: AUDIENCE, OAUTH_TENANT_CLAIM: 'org' });
    });

    afterAll(async () => {
      await custom?.close();
    });

    it('verifies against the configured JWKS without reading the issuer metadata, with the configured audience and tenant claim', async () => {
      const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'gina', org: tenant, scope: 'mcp:tools' };
      const ok = await custom.request({ method: 'GET', url: '/api/v1/mcp/tools', token: jwks.sign(claims, { alg: 'ES256' }) });
      expect(ok.status).toBe(200);
      expect(ok.body.data.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['fake__echo']));
      // The default audience is no longer accepted once OAUTH_AUDIENCE names another resource.
      const wrong = await custom.request({ method: 'GET', url: '/api/v1/mcp/tools', token: jwks.sign({ ...claims, aud: RESOURCE }, { alg: 'ES256' }) });
      expect(wrong.status).toBe(401);
      expect(wrong.body.reason).toBe('wrong_audience');
      const pr = await custom.request({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp' });
      expect(pr.body).toMatchObject({ resource: AUDIENCE, authorization_servers: [ISSUER] });
    });

    it('an unreachable authorization server makes its metadata document 503, not 401 or 500', async () => {
      const res = await custom.request({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
    });
  });

  it('an authorization server whose keys cannot be found is 503 service_unavailable for its callers (no brake, no audit)', async () => {
    const down = await createTestApp({ OAUTH_ISSUER: 'http://127.0.0.1:9' });
    try {
      const bearer = jwks.sign({ iss: 'http://127.0.0.1:9', aud: RESOURCE, sub: 'h', tenant_id: tenant, scope: 'mcp:tools' }, { alg: 'RS256' });
      const res = await down.request({ method: 'GET', url: '/api/v1/mcp/tools', token: bearer });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('service_unavailable');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await down.close();
    }
  });

  it('an agent of a tenant Tollgate has never seen calls a tool shared with every tenant (UPSTREAMS_FILE "*"): the tenant is created, charged on its own ledger', async () => {
    const file = join(process.env.DATA_DIR!, `oauth-upstreams-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify([{ tenant_id: '*', name: 'shared', url: fake.url, timeout_ms: 10000 }]));
    const app = await createTestApp({ OAUTH_ISSUER: as.issuer, UPSTREAMS_FILE: file });
    try {
      const fresh = uniqueTenant('oauth-new');
      const bearer = jwks.sign({ iss: as.issuer, aud: RESOURCE, sub: 'nina', tenant_id: fresh, scope: 'mcp:tools' }, { alg: 'RS256' });
      const res = await app.request({ method: 'POST', url: '/api/v1/mcp/tools/shared__echo/call', token: bearer, body: { arguments: { message: 'hi' } } });
      expect(res.status).toBe(200);
      expect(await app.db.query(`SELECT plan FROM tenants WHERE id = $1`, [fresh])).toEqual([{ plan: 'free' }]);
      const charges = await app.db.query(`SELECT count(*)::int AS n FROM credit_transactions WHERE tenant_id = $1 AND type = 'charge'`, [fresh]);
      expect(charges).toEqual([{ n: 1 }]);
    } finally {
      await app.close();
    }
  });
});
