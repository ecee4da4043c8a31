import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { sign } from 'jsonwebtoken';
import { createTestApp, TestApp } from '../support/create-test-app';
import { TEST_JWT_SECRET } from '../support/env';
import { createKey, managementToken, uniqueName, uniqueTenant } from '../support/factories';

const RESOURCE_METADATA = 'resource_metadata="http://tollgate.test/.well-known/oauth-protected-resource/mcp"';

describe('Tenancy, roles and authentication (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  async function row(id: string) {
    const [r] = await t.db.query(`SELECT * FROM api_keys WHERE id = $1`, [id]);
    return r;
  }
  async function countRows(tenant: string): Promise<number> {
    const [{ n }] = await t.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1`, [tenant]);
    return n;
  }
  function expectNotFound(res: { status: number; headers: Record<string, unknown>; body: any }) {
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, code: 'not_found' });
  }

  describe('developers manage only their own keys', () => {
    it("cannot GET, PATCH, DELETE, rotate or read usage of another user's key (404) and the row is unchanged", async () => {
      const tenant = uniqueTenant();
      const alice = managementToken({ tenantId: tenant, sub: 'alice', roles: ['developer'] });
      const bob = managementToken({ tenantId: tenant, sub: 'bob', roles: ['developer'] });
      const k = await createKey(t, alice);
      expect(k.user_id).toBe('alice');
      const before = await row(k.id);

      expectNotFound(await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: bob }));
      expectNotFound(await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}/usage`, token: bob }));
      expectNotFound(
        await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: bob, body: { name: 'stolen', enabled: false } }),
      );
      expectNotFound(await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: bob }));
      expectNotFound(
        await t.request({ method: 'POST', url: `/api/v1/api-keys/${k.id}/rotate`, token: bob, body: { grace_period_seconds: 0 } }),
      );

      expect(await row(k.id)).toEqual(before);
      expect(await countRows(tenant)).toBe(1);
      // the owner still can
      const own = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: alice });
      expect(own.status).toBe(200);
      expect(own.body.status).toBe('active');
    });

    it('lists only their own keys, and may not filter on another user', async () => {
      const tenant = uniqueTenant();
      const admin = managementToken({ tenantId: tenant, sub: 'boss', roles: ['admin'] });
      const alice = managementToken({ tenantId: tenant, sub: 'alice', roles: ['developer'] });
      const mine = await createKey(t, alice);
      await createKey(t, admin, { user_id: 'bob' });
      await createKey(t, admin);

      const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: alice });
      expect(list.status).toBe(200);
      expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([mine.id]);

      const other = await t.request({ method: 'GET', url: '/api/v1/api-keys?user_id=bob', token: alice });
      expect(other.status).toBe(403);
      expect(other.body.code).toBe('forbidden');
    });

    it('cannot create a key for another user_id (403, no row)', async () => {
      const tenant = uniqueTenant();
      const alice = managementToken({ tenantId: tenant, sub: 'alice', roles: ['developer'] });
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: alice,
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] }, user_id: 'bob' },
      });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect(res.body.token).toBeUndefined();
      expect(await countRows(tenant)).toBe(0);
    });
  });

  it('a service creates a key on behalf of a user of its tenant (201, that user_id, owner can manage it)', async () => {
    const tenant = uniqueTenant();
    const service = managementToken({ tenantId: tenant, sub: 'billing-backend', roles: ['service'] });
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      token: service,
      body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] }, user_id: 'carol' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ user_id: 'carol', tenant_id: tenant, created_by: 'billing-backend' });
    expect(res.body.token).toMatch(/^tg_live_/);
    expect((await row(res.body.id)).user_id).toBe('carol');

    const carol = managementToken({ tenantId: tenant, sub: 'carol', roles: ['developer'] });
    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${res.body.id}`, token: carol });
    expect(got.status).toBe(200);
    // a service may not list keys
    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: service });
    expect(list.status).toBe(403);
  });

  it('an admin sees and manages every key of the tenant', async () => {
    const tenant = uniqueTenant();
    const admin = managementToken({ tenantId: tenant, sub: 'boss', roles: ['admin'] });
    const ids: string[] = [];
    for (const sub of ['alice', 'bob']) {
      ids.push((await createKey(t, managementToken({ tenantId: tenant, sub, roles: ['developer'] }))).id);
    }
    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { id: string }) => k.id).sort()).toEqual([...ids].sort());

    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${ids[0]}`, token: admin });
    expect(got.status).toBe(200);
    expect(got.body.user_id).toBe('alice');
    const patch = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${ids[1]}`, token: admin, body: { enabled: false } });
    expect(patch.status).toBe(200);
    expect((await row(ids[1])).enabled).toBe(false);
  });

  it("a tenant cannot see, change or revoke another tenant's keys (404) and its list is empty", async () => {
    const tenantA = uniqueTenant('a');
    const tenantB = uniqueTenant('b');
    const adminA = managementToken({ tenantId: tenantA, sub: 'same-sub', roles: ['admin'] });
    const adminB = managementToken({ tenantId: tenantB, sub: 'same-sub', roles: ['admin'] });
    const k = await createKey(t, adminA);
    const before = await row(k.id);

    expectNotFound(await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: adminB }));
    expectNotFound(await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}/usage`, token: adminB }));
    expectNotFound(await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: adminB, body: { enabled: false } }));
    expectNotFound(await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: adminB }));
    expectNotFound(
      await t.request({ method: 'POST', url: `/api/v1/api-keys/${k.id}/rotate`, token: adminB, body: { grace_period_seconds: 0 } }),
    );

    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: adminB });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [], next_cursor: null });
    const filtered = await t.request({ method: 'GET', url: `/api/v1/api-keys?name=${encodeURIComponent(k.name)}`, token: adminB });
    expect(filtered.body.data).toEqual([]);

    expect(await row(k.id)).toEqual(before);
    const [{ n }] = await t.db.query(`SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1`, [tenantB]);
    expect(n).toBe(0);
  });

  it('an auditor can neither create (403 forbidden, no row) nor list or get keys', async () => {
    const tenant = uniqueTenant();
    const admin = managementToken({ tenantId: tenant, roles: ['admin'] });
    const auditor = managementToken({ tenantId: tenant, sub: 'aud', roles: ['auditor'] });
    const k = await createKey(t, admin);

    const create = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      token: auditor,
      body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
    });
    expect(create.status).toBe(403);
    expect(create.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(create.body.code).toBe('forbidden');
    expect(await countRows(tenant)).toBe(1);

    expect((await t.request({ method: 'GET', url: '/api/v1/api-keys', token: auditor })).status).toBe(403);
    expect((await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: auditor })).status).toBe(403);
    expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: auditor })).status).toBe(403);
    expect((await row(k.id)).revoked_at).toBeNull();
  });

  it('a JWT with no known role is 403 everywhere', async () => {
    const tenant = uniqueTenant();
    const nobody = managementToken({ tenantId: tenant, roles: ['superuser' as never] });
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: nobody });
    expect(res.status).toBe(403);
  });

  describe('authentication (HS256 test secret)', () => {
    it('no JWT → 401 problem+json with the WWW-Authenticate challenge and no error attribute', async () => {
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys' });
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('unauthenticated');
      const challenge = String(res.headers['www-authenticate']);
      expect(challenge.startsWith('Bearer realm="tollgate"')).toBe(true);
      expect(challenge).toContain(RESOURCE_METADATA);
      expect(challenge).not.toContain('error=');
    });

    it.each([
      ['a wrong signature', () => managementToken({ tenantId: uniqueTenant(), secret: 'another-secret-0123456789abcdef-0123456789' })],
      ['an expired token', () => managementToken({ tenantId: uniqueTenant(), expiresIn: -120 })],
      ['garbage', () => 'not.a.jwt'],
      ['a token without a tenant claim', () => sign({ sub: 'x', roles: ['admin'] }, TEST_JWT_SECRET, { algorithm: 'HS256' })],
      ['an unsigned (alg none) token', () => sign({ sub: 'x', tenant_id: uniqueTenant(), roles: ['admin'] }, '', { algorithm: 'none' })],
    ])('%s → 401 with error="invalid_token"', async (_label, make) => {
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: make() });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
      const challenge = String(res.headers['www-authenticate']);
      expect(challenge.startsWith('Bearer realm="tollgate"')).toBe(true);
      expect(challenge).toContain(RESOURCE_METADATA);
      expect(challenge).toContain('error="invalid_token"');
    });

    it('a refused JWT creates nothing', async () => {
      const tenant = uniqueTenant();
      const bad = managementToken({ tenantId: tenant, secret: 'another-secret-0123456789abcdef-0123456789' });
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: bad,
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(res.status).toBe(401);
      expect(await countRows(tenant)).toBe(0);
      const tenants = await t.db.query(`SELECT id FROM tenants WHERE id = $1`, [tenant]);
      expect(tenants).toEqual([]);
    });
  });

  describe("a key's scope never exceeds its creator's", () => {
    async function attempt(creatorScope: Record<string, unknown>, keyScope: Record<string, unknown>) {
      const tenant = uniqueTenant();
      const creator = managementToken({ tenantId: tenant, sub: 'dev', roles: ['developer'], scope: creatorScope });
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: creator,
        body: { name: uniqueName(), permission_scope: keyScope },
      });
      return { res, rows: await countRows(tenant), tenant, creator };
    }

    it('a wildcard wider than the creator is 403 scope_too_wide and no row', async () => {
      const { res, rows } = await attempt({ mcp_tool_ids: ['github__*'] }, { mcp_tool_ids: ['*'] });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('scope_too_wide');
      expect(res.body.token).toBeUndefined();
      expect(rows).toBe(0);
    });

    it('a narrower wildcard is 201', async () => {
      const { res, rows } = await attempt({ mcp_tool_ids: ['github__*'] }, { mcp_tool_ids: ['github__issues*'] });
      expect(res.status).toBe(201);
      expect(res.body.permission_scope.mcp_tool_ids).toEqual(['github__issues*']);
      expect(rows).toBe(1);
    });

    it("a resource type the creator lacks is refused", async () => {
      const { res, rows } = await attempt({ mcp_tool_ids: ['github__*'] }, { mcp_tool_ids: ['github__x'], agent_ids: ['agt_1'] });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('scope_too_wide');
      expect(rows).toBe(0);
    });

    it("dropping the creator's deny is refused; keeping it is allowed", async () => {
      const creatorScope = { mcp_tool_ids: ['github__*'], deny: { mcp_tool_ids: ['github__delete*'] } };
      const dropped = await attempt(creatorScope, { mcp_tool_ids: ['github__*'] });
      expect(dropped.res.status).toBe(403);
      expect(dropped.res.body.code).toBe('scope_too_wide');
      expect(dropped.rows).toBe(0);

      const kept = await attempt(creatorScope, { mcp_tool_ids: ['github__*'], deny: { mcp_tool_ids: ['github__delete*'] } });
      expect(kept.res.status).toBe(201);
      expect(kept.rows).toBe(1);
    });

    it('widening an existing key through PATCH is refused and the row is unchanged', async () => {
      const { res, creator } = await attempt({ mcp_tool_ids: ['github__*'] }, { mcp_tool_ids: ['github__issues*'] });
      expect(res.status).toBe(201);
      const before = await row(res.body.id);
      const patch = await t.request({
        method: 'PATCH',
        url: `/api/v1/api-keys/${res.body.id}`,
        token: creator,
        body: { permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(patch.status).toBe(403);
      expect(patch.body.code).toBe('scope_too_wide');
      expect(await row(res.body.id)).toEqual(before);
    });
  });

  describe('JWKS (RS256) management tokens', () => {
    const ISSUER = 'https://idp.tollgate.test/';
    const AUDIENCE = 'tollgate-management';
    const KID = 'test-key-1';
    let jwksServer: Server;
    let jwksApp: TestApp;
    let privateKey: KeyObject;
    let otherPrivateKey: KeyObject;
    let jwksHits = 0;

    beforeAll(async () => {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      privateKey = pair.privateKey;
      otherPrivateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };
      jwksServer = createServer((req, res) => {
        jwksHits++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
      const port = (jwksServer.address() as AddressInfo).port;
      jwksApp = await createTestApp({
        JWT_JWKS_URI: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
      });
    });
    afterAll(async () => {
      await jwksApp?.close();
      await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
    });

    function rs256(opts: { key?: KeyObject; issuer?: string; audience?: string; expiresIn?: number; kid?: string; tenant?: string } = {}) {
      return sign({ sub: 'idp-user', tenant_id: opts.tenant ?? uniqueTenant(), roles: ['admin'] }, opts.key ?? privateKey, {
        algorithm: 'RS256',
        keyid: opts.kid ?? KID,
        issuer: opts.issuer ?? ISSUER,
        audience: opts.audience ?? AUDIENCE,
        expiresIn: opts.expiresIn ?? 300,
      });
    }

    it('accepts a token signed by the JWKS key with the right issuer and audience', async () => {
      const tenant = uniqueTenant();
      const res = await jwksApp.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: rs256({ tenant }),
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ tenant_id: tenant, user_id: 'idp-user' });
      expect(jwksHits).toBeGreaterThan(0);
    });

    it.each([
      ['a wrong audience', () => rs256({ audience: 'someone-else' })],
      ['a wrong issuer', () => rs256({ issuer: 'https://evil.test/' })],
      ['an expired token', () => rs256({ expiresIn: -120 })],
      ['a wrong signature (other key, same kid)', () => rs256({ key: otherPrivateKey })],
      ['an unknown kid', () => rs256({ kid: 'nope' })],
      [
        'an HS256 token (shared secret is not accepted once a JWKS is configured)',
        () => managementToken({ tenantId: uniqueTenant(), claims: { iss: ISSUER, aud: AUDIENCE } }),
      ],
    ])('refuses %s with 401 invalid_token', async (_label, make) => {
      const res = await jwksApp.request({ method: 'GET', url: '/api/v1/api-keys', token: make() });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
      expect(String(res.headers['www-authenticate'])).toContain('error="invalid_token"');
    });
  });
});
