import { ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createTestApp, TestApp } from '../support/create-test-app';
import { managementToken, setPlan, uniqueTenant } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/**
 * Issue 5, acceptance 3 and 4, against a real authorization server:
 * `oidc-provider` (ESM-only, hence a child process: test/support/oidc-provider-server.mjs)
 * issues RFC 8707 resource-bound RS256 JWT access tokens through client_credentials,
 * and Tollgate discovers its JWKS from the issuer's metadata (OAUTH_JWKS_URI unset).
 */

const PUBLIC_URL = 'http://tollgate.test'; // test/support/env.ts
const RESOURCE = `${PUBLIC_URL}/mcp`; // OAUTH_AUDIENCE default: `${PUBLIC_URL}/mcp`
const OTHER_RESOURCE = 'https://other-resource.example.com/mcp';
const METADATA_URL = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
const ACCEPT = 'application/json, text/event-stream';
const SERVER_SCRIPT = join(__dirname, '..', 'support', 'oidc-provider-server.mjs');
const CLIENT = { client_id: 'tollgate-agent', client_secret: `secret-${randomUUID()}-${randomUUID()}` };

interface AuthorizationServer {
  issuer: string;
  /** Where it listens: differs from `issuer` for an instance started with OIDC_ISSUER. */
  url: string;
  stop(): Promise<void>;
}

function signingKeys(kid: string): { keys: Record<string, unknown>[] } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] };
}

/** Starts oidc-provider in a child process; resolves once it printed its issuer. */
function startAuthorizationServer(env: Record<string, string>): Promise<AuthorizationServer> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [SERVER_SCRIPT], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`oidc-provider did not start in time: ${err}`)), 15_000);
    function fail(e: Error): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    }
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`oidc-provider exited (${code}): ${err}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      const { issuer, url } = JSON.parse(out.slice(0, nl)) as { issuer: string; url: string };
      resolve({
        issuer,
        url,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/** client_credentials with an RFC 8707 `resource` indicator, client_secret_post. */
async function clientCredentialsToken(as: AuthorizationServer, resource: string): Promise<string> {
  const res = await fetch(`${as.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp:tools', resource, ...CLIENT }).toString(),
  });
  const body = (await res.json()) as { access_token?: string; token_type?: string; error?: string; error_description?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`token request failed: ${res.status} ${body.error} ${body.error_description}`);
  expect(body.token_type).toBe('Bearer');
  return body.access_token;
}

function claimsOf(jwt: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) };
}

describe('OAuth against a real authorization server (oidc-provider, client_credentials + resource indicators) (e2e)', () => {
  const keys = signingKeys('tollgate-e2e-as');
  let tenant: string;
  let as: AuthorizationServer;
  /** The same issuer and keys, its clock an hour behind: tokens it mints are long expired. */
  let asAnHourAgo: AuthorizationServer;
  /** Another issuer signing with the same keys: only `iss` tells its tokens apart. */
  let otherIssuerSameKeys: AuthorizationServer;
  /** Another issuer with its own keys. */
  let otherIssuer: AuthorizationServer;
  let fake: FakeUpstream;
  let t: TestApp;
  let baseUrl: string;
  const clients: Client[] = [];

  const INIT = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oidc-e2e', version: '1.0.0' } },
  };

  async function mcpInitialize(bearer: string | null): Promise<{ status: number; headers: Headers; json: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: ACCEPT };
    if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
    const res = await fetch(`${baseUrl}/mcp`, { method: 'POST', headers, body: JSON.stringify(INIT) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  }

  async function connect(bearer: string): Promise<Client> {
    const client = new Client({ name: 'oidc-e2e', version: '1.0.0' });
    clients.push(client);
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } }));
    return client;
  }

  beforeAll(async () => {
    tenant = uniqueTenant('oidc');
    const common = {
      OIDC_CLIENTS: JSON.stringify([CLIENT]),
      OIDC_RESOURCES: JSON.stringify([RESOURCE, OTHER_RESOURCE]),
      OIDC_TENANT: tenant,
    };
    as = await startAuthorizationServer({ ...common, OIDC_JWKS: JSON.stringify(keys) });
    [asAnHourAgo, otherIssuerSameKeys, otherIssuer] = await Promise.all([
      startAuthorizationServer({ ...common, OIDC_JWKS: JSON.stringify(keys), OIDC_ISSUER: as.issuer, OIDC_CLOCK_OFFSET_S: '-3600' }),
      startAuthorizationServer({ ...common, OIDC_JWKS: JSON.stringify(keys) }),
      startAuthorizationServer({ ...common, OIDC_JWKS: JSON.stringify(signingKeys('other-as')) }),
    ]);
    fake = await new FakeUpstream().start();
    t = await createTestApp({ OAUTH_ISSUER: as.issuer });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    await setPlan(t, tenant, 'enterprise');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: managementToken({ tenantId: tenant }), body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t?.close();
    await fake?.stop();
    await Promise.all([as, asAnHourAgo, otherIssuerSameKeys, otherIssuer].map((s) => s?.stop()));
  });

  it('a client_credentials token with resource=<Tollgate /mcp> lets the official SDK client list and call tools', async () => {
    const bearer = await clientCredentialsToken(as, RESOURCE);
    const { header, payload } = claimsOf(bearer);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: 'tollgate-e2e-as' });
    expect(payload).toMatchObject({ iss: as.issuer, aud: RESOURCE, sub: CLIENT.client_id, scope: 'mcp:tools', tenant_id: tenant });

    const client = await connect(bearer);
    const { tools } = await client.listTools();
    expect(tools.map((x) => x.name)).toContain('fake__echo');
    const result = await client.callTool({ name: 'fake__echo', arguments: { message: 'via oidc-provider' } });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: via oidc-provider' }]);
    for (const h of fake.requestHeaders) expect(JSON.stringify(h)).not.toContain(bearer);
  });

  const refusals: [string, () => Promise<string>, string][] = [
    ['a token for another resource (RFC 8707 audience)', () => clientCredentialsToken(as, OTHER_RESOURCE), 'wrong_audience'],
    ['an expired token (same issuer and keys, minted an hour ago)', () => clientCredentialsToken(asAnHourAgo, RESOURCE), 'token_expired'],
    ['a token from another issuer signing with the same keys', () => clientCredentialsToken(otherIssuerSameKeys, RESOURCE), 'wrong_issuer'],
    ['a token from another issuer with its own keys', () => clientCredentialsToken(otherIssuer, RESOURCE), 'unknown_signing_key'],
  ];

  it.each(refusals)('%s → 401 with error="invalid_token" and resource_metadata', async (_label, mint, reason) => {
    const bearer = await mint();
    const res = await mcpInitialize(bearer);
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: 'unauthenticated', reason });
    const www = res.headers.get('www-authenticate') ?? '';
    expect(www).toMatch(/^Bearer realm="tollgate", /);
    expect(www).toContain('error="invalid_token"');
    expect(www).toContain(`resource_metadata="${METADATA_URL}"`);
    expect(www).toContain('scope="mcp:tools"');
    expect(www).not.toContain(bearer);
  });

  it('the SDK client refuses to connect with a token minted for another resource', async () => {
    const bearer = await clientCredentialsToken(as, OTHER_RESOURCE);
    await expect(connect(bearer)).rejects.toThrow();
  });

  it('an unauthenticated initialize gets 401 whose resource_metadata document exists and names the issuer', async () => {
    const res = await mcpInitialize(null);
    expect(res.status).toBe(401);
    const www = res.headers.get('www-authenticate') ?? '';
    expect(www).toMatch(/^Bearer realm="tollgate", /);
    expect(www).not.toContain('error=');
    const url = /resource_metadata="([^"]+)"/.exec(www)?.[1];
    expect(url).toBe(METADATA_URL);

    // PUBLIC_URL is not resolvable in the test: fetch the same path from the listening app.
    const doc = await fetch(`${baseUrl}${new URL(url!).pathname}`);
    expect(doc.status).toBe(200);
    expect(doc.headers.get('content-type')).toContain('application/json');
    const body = (await doc.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ resource: RESOURCE, authorization_servers: [as.issuer], scopes_supported: expect.arrayContaining(['mcp:tools']) });
  });

  it("/.well-known/oauth-authorization-server surfaces the provider's own metadata", async () => {
    const res = await fetch(`${baseUrl}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ issuer: as.issuer, token_endpoint: `${as.issuer}/token`, jwks_uri: `${as.issuer}/jwks` });
  });
});
