import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeJwks, startFakeJwks } from '../support/fake-jwks';
import { TEST_JWT_SECRET } from '../support/env';
import { ALL_TOOLS, uniqueName, uniqueTenant } from '../support/factories';

const ISSUER = 'https://idp.test/';
const AUDIENCE = 'tollgate-api';

describe('Management JWT authentication against a real JWKS (e2e)', () => {
  let jwks: FakeJwks;
  let t: TestApp;

  beforeAll(async () => {
    jwks = await startFakeJwks();
    t = await createTestApp({
      JWT_JWKS_URI: jwks.jwksUri,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_SECRET: undefined,
    });
  });
  afterAll(async () => {
    await t?.close();
    await jwks?.close();
  });

  function claims(tenant: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', tenant_id: tenant, roles: ['admin'], ...extra };
  }

  function createKey(app: TestApp, token: string) {
    return app.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      token,
      body: { name: uniqueName(), permission_scope: ALL_TOOLS },
    });
  }

  async function tenantRows(tenant: string): Promise<{ plan: string }[]> {
    return t.db.query(`SELECT plan FROM tenants WHERE id = $1`, [tenant]);
  }

  function expectInvalidToken(res: { status: number; headers: Record<string, unknown>; body: any }) {
    expect(res.status).toBe(401);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(typeof res.body.type).toBe('string');
    expect(typeof res.body.title).toBe('string');
    expect(typeof res.body.detail).toBe('string');
    expect(String(res.headers['www-authenticate'])).toContain('error="invalid_token"');
    expect(String(res.headers['www-authenticate'])).toContain('realm="tollgate"');
  }

  it('accepts an RS256 token from the JWKS: 201 creates a key and the tenant (plan free) on first use', async () => {
    const tenant = uniqueTenant('rs');
    expect(await tenantRows(tenant)).toHaveLength(0);

    const res = await createKey(t, jwks.sign(claims(tenant), { alg: 'RS256' }));

    expect(res.status).toBe(201);
    expect(res.body.tenant_id).toBe(tenant);
    expect(res.body.created_by).toBe('user-1');
    expect(typeof res.body.token).toBe('string');
    expect(await tenantRows(tenant)).toEqual([{ plan: 'free' }]);
    const keys = await t.db.query(`SELECT tenant_id FROM api_keys WHERE id = $1`, [res.body.id]);
    expect(keys).toEqual([{ tenant_id: tenant }]);
  });

  it('accepts an ES256 token from the JWKS: 200 lists the tenant\'s keys', async () => {
    const tenant = uniqueTenant('es');
    const token = jwks.sign(claims(tenant), { alg: 'ES256' });
    const created = await createKey(t, token);
    expect(created.status).toBe(201);

    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token });

    expect(res.status).toBe(200);
    expect(res.body.data.map((k: { id: string }) => k.id)).toEqual([created.body.id]);
    expect(await tenantRows(tenant)).toEqual([{ plan: 'free' }]);
  });

  const refused: [string, (tenant: string) => string][] = [
    ['a wrong audience', (tn) => jwks.sign(claims(tn, { aud: 'someone-else' }), { alg: 'RS256' })],
    ['a wrong issuer', (tn) => jwks.sign(claims(tn, { iss: 'https://evil.test/' }), { alg: 'RS256' })],
    ['no issuer', (tn) => jwks.sign(claims(tn, { iss: undefined as unknown as string }), { alg: 'ES256' })],
    ['no exp (a token that would never expire)', (tn) => jwks.sign(claims(tn, { exp: undefined as unknown as number }), { alg: 'RS256' })],
    [
      'an expired token (beyond clock tolerance)',
      (tn) => {
        const now = Math.floor(Date.now() / 1000);
        return jwks.sign(claims(tn, { iat: now - 7200, exp: now - 3600 }), { alg: 'ES256' });
      },
    ],
    [
      'a token not valid yet',
      (tn) => jwks.sign(claims(tn, { nbf: Math.floor(Date.now() / 1000) + 3600 }), { alg: 'RS256' }),
    ],
    [
      'an RS256 signature by an attacker key carrying the published RSA kid',
      (tn) => jwks.sign(claims(tn), { alg: 'RS256', key: 'attacker-rsa', kid: jwks.kids.rsa }),
    ],
    [
      'an ES256 signature by an attacker key carrying the published EC kid',
      (tn) => jwks.sign(claims(tn), { alg: 'ES256', key: 'attacker-ec', kid: jwks.kids.ec }),
    ],
    ['an unknown kid', (tn) => jwks.sign(claims(tn), { alg: 'RS256', key: 'attacker-rsa' })],
    ['an RS256 token whose kid names the EC key', (tn) => jwks.sign(claims(tn), { alg: 'RS256', kid: jwks.kids.ec })],
    ['alg "none"', (tn) => jwks.sign(claims(tn), { alg: 'none', kid: jwks.kids.rsa })],
    [
      'HS256 signed with the published RSA public key (algorithm confusion)',
      (tn) => jwks.sign(claims(tn), { alg: 'HS256', kid: jwks.kids.rsa, key: jwks.publicPem.rsa }),
    ],
    [
      'HS256 signed with the test JWT_SECRET (HS256 is off when a JWKS is configured)',
      (tn) => jwks.sign(claims(tn), { alg: 'HS256', kid: null, key: TEST_JWT_SECRET }),
    ],
    ['a payload tampered after signing', (tn) => tamper(jwks.sign(claims('someone-else'), { alg: 'RS256' }), claims(tn))],
    ['garbage', () => 'not.a.jwt'],
  ];

  it.each(refused)('refuses %s with 401 invalid_token and creates nothing', async (_label, mint) => {
    const tenant = uniqueTenant('bad');
    const res = await createKey(t, mint(tenant));
    expectInvalidToken(res);
    // The refusal does not tell the caller which issuer or audience would pass.
    expect(res.body.detail).not.toContain(AUDIENCE);
    expect(res.body.detail).not.toContain(ISSUER);
    expect(await tenantRows(tenant)).toHaveLength(0);
    const [{ count }] = await t.db.query(`SELECT count(*)::int AS count FROM api_keys WHERE tenant_id = $1`, [tenant]);
    expect(count).toBe(0);
  });

  it('refuses a signed token without the tenant claim (401) and creates no tenant', async () => {
    const tenant = uniqueTenant('nt');
    const c = claims(tenant);
    delete c.tenant_id;
    const res = await createKey(t, jwks.sign({ ...c, tenant: tenant }, { alg: 'RS256' }));
    expectInvalidToken(res);
    expect(await tenantRows(tenant)).toHaveLength(0);
  });

  it('refuses a request without any bearer token (401 without error="invalid_token")', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys' });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('unauthenticated');
    expect(String(res.headers['www-authenticate'])).toContain('realm="tollgate"');
    expect(String(res.headers['www-authenticate'])).not.toContain('error=');
  });

  it('reads roles given as a space-separated string', async () => {
    const tenant = uniqueTenant('sp');
    const token = jwks.sign(claims(tenant, { roles: 'admin developer' }), { alg: 'RS256' });
    const created = await createKey(t, token);
    expect(created.status).toBe(201);
    const listed = await t.request({ method: 'GET', url: '/api/v1/api-keys', token });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toHaveLength(1);

    // The string is really read: an auditor-only string may not create keys.
    const auditor = jwks.sign(claims(tenant, { sub: 'aud-1', roles: 'auditor' }), { alg: 'RS256' });
    const denied = await createKey(t, auditor);
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('forbidden');
    const [{ count }] = await t.db.query(`SELECT count(*)::int AS count FROM api_keys WHERE tenant_id = $1`, [tenant]);
    expect(count).toBe(1);
  });

  describe('with custom claim names (JWT_TENANT_CLAIM=org, JWT_ROLES_CLAIM=https://tollgate.dev/roles)', () => {
    let custom: TestApp;
    beforeAll(async () => {
      custom = await createTestApp({
        JWT_JWKS_URI: jwks.jwksUri,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_SECRET: undefined,
        JWT_TENANT_CLAIM: 'org',
        JWT_ROLES_CLAIM: 'https://tollgate.dev/roles',
      });
    });
    afterAll(async () => {
      await custom?.close();
    });

    it('takes the tenant from "org" and the roles from the namespaced claim', async () => {
      const org = uniqueTenant('org');
      const decoy = uniqueTenant('decoy');
      const token = jwks.sign(
        { iss: ISSUER, aud: AUDIENCE, sub: 'u-9', org, tenant_id: decoy, 'https://tollgate.dev/roles': ['admin'] },
        { alg: 'ES256' },
      );
      const res = await createKey(custom, token);
      expect(res.status).toBe(201);
      expect(res.body.tenant_id).toBe(org);
      expect(await tenantRows(org)).toEqual([{ plan: 'free' }]);
      expect(await tenantRows(decoy)).toHaveLength(0);
    });

    it('refuses a token that only has the default tenant_id claim (401)', async () => {
      const tenant = uniqueTenant('def');
      const res = await createKey(custom, jwks.sign(claims(tenant), { alg: 'RS256' }));
      expectInvalidToken(res);
      expect(await tenantRows(tenant)).toHaveLength(0);
    });

    it('ignores roles under the default "roles" claim (403)', async () => {
      const org = uniqueTenant('org');
      const token = jwks.sign({ iss: ISSUER, aud: AUDIENCE, sub: 'u-9', org, roles: ['admin'] }, { alg: 'RS256' });
      const res = await createKey(custom, token);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    });

    it('reads a space-separated string under the custom roles claim', async () => {
      const org = uniqueTenant('org');
      const token = jwks.sign(
        { iss: ISSUER, aud: AUDIENCE, sub: 'u-9', org, 'https://tollgate.dev/roles': 'developer auditor' },
        { alg: 'RS256' },
      );
      const res = await createKey(custom, token);
      expect(res.status).toBe(201);
      expect(res.body.tenant_id).toBe(org);
    });
  });
});

/** Replaces the payload of a signed JWT, keeping header and signature. */
function tamper(token: string, payload: Record<string, unknown>): string {
  const [header, , signature] = token.split('.');
  const now = Math.floor(Date.now() / 1000);
  return `${header}.${Buffer.from(JSON.stringify({ iat: now, exp: now + 600, ...payload })).toString('base64url')}.${signature}`;
}
