import { APIKeyToken } from '../../src/api-keys/domain/api-key-token';
import { APIKeyRepository } from '../../src/api-keys/domain/api-key.repository';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant, verifyKey } from '../support/factories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The same key with one character of its random part replaced by another base62 character. */
function flipOne(token: string, index: number): string {
  const c = token[index];
  const replacement = BASE62[(BASE62.indexOf(c) + 1) % 62];
  return token.slice(0, index) + replacement + token.slice(index + 1);
}

describe('POST /api/v1/keys/verify (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  function setup() {
    const tenant = uniqueTenant();
    return {
      tenant,
      admin: managementToken({ tenantId: tenant, sub: 'admin-1', roles: ['admin'] }),
      service: managementToken({ tenantId: tenant, sub: 'svc-1', roles: ['service'] }),
    };
  }

  it('a valid key is valid:true with its owner', async () => {
    const { tenant, admin, service } = setup();
    const k = await createKey(t, admin, { user_id: 'user-7' });
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({
      valid: true,
      code: 'valid',
      key_id: k.id,
      tenant_id: tenant,
      user_id: 'user-7',
      plan: 'free',
      matched_rule: null,
    });
    expect(v.text).not.toContain(k.token);
  });

  it.each([
    ['a character of the random part', 12],
    ['the last checksum character', -1],
  ])('flipping %s gives invalid_key without a database lookup', async (_label, at) => {
    const { admin, service } = setup();
    const k = await createKey(t, admin);
    const index = at < 0 ? k.token.length + at : at;
    const forged = flipOne(k.token, index);
    expect(forged).not.toBe(k.token);
    expect(forged).toHaveLength(k.token.length);
    const spy = jest.spyOn(t.app.get(APIKeyRepository), 'findByHash');
    const v = await verifyKey(t, service, { key: forged });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'invalid_key', key_id: null, tenant_id: null, user_id: null });
    expect(spy).not.toHaveBeenCalled();
  });

  it('garbage gives invalid_key (200) without a database lookup', async () => {
    const { service } = setup();
    const spy = jest.spyOn(t.app.get(APIKeyRepository), 'findByHash');
    for (const key of ['', 'hello', 'tg_live_', 'Bearer tg_live_abc', 'x'.repeat(256)]) {
      const v = await verifyKey(t, service, { key });
      expect(v.status).toBe(200);
      expect(v.body).toMatchObject({ valid: false, code: 'invalid_key' });
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('a well-formed unknown key is invalid_key after one lookup', async () => {
    const { service } = setup();
    const unknown = APIKeyToken.generate('tg', 'live').value;
    const spy = jest.spyOn(t.app.get(APIKeyRepository), 'findByHash');
    const v = await verifyKey(t, service, { key: unknown });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'invalid_key', key_id: null });
    expect(spy).toHaveBeenCalledTimes(1);
    // it looks up a peppered hash, never the plaintext
    expect(spy.mock.calls[0][0]).toMatch(/^[0-9a-f]{64}$/);
    expect(spy.mock.calls[0][0]).not.toContain(unknown);
  });

  it('a disabled key is disabled_key', async () => {
    const { admin, service } = setup();
    const k = await createKey(t, admin);
    await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } });
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'disabled_key', key_id: k.id });
  });

  it('a key past its expires_at is expired_key (real clock)', async () => {
    const { admin, service } = setup();
    const k = await createKey(t, admin, { expires_at: new Date(Date.now() + 1500).toISOString() });
    expect((await verifyKey(t, service, { key: k.token })).body).toMatchObject({ valid: true });
    await sleep(1700);
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'expired_key', key_id: k.id });
    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: admin });
    expect(got.body.status).toBe('expired');
  });

  it('a key whose row expired in the database is expired_key', async () => {
    const { admin, service } = setup();
    const k = await createKey(t, admin);
    await t.db.query(`UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, [k.id]);
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.body).toMatchObject({ valid: false, code: 'expired_key', key_id: k.id });
  });

  it('a revoked key is revoked_key (revoked wins over disabled and expired)', async () => {
    const { admin, service } = setup();
    const k = await createKey(t, admin);
    await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } });
    expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: admin })).status).toBe(204);
    await t.db.query(`UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, [k.id]);
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'revoked_key', key_id: k.id });
  });

  it("another tenant's key is invalid_key and leaks nothing", async () => {
    const a = setup();
    const b = setup();
    const k = await createKey(t, a.admin, { user_id: 'user-a' });
    const v = await verifyKey(t, b.service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({
      valid: false,
      code: 'invalid_key',
      key_id: null,
      tenant_id: null,
      user_id: null,
      name: null,
      matched_rule: null,
    });
    expect(v.text).not.toContain(k.id);
    expect(v.text).not.toContain(a.tenant);
    // also for a revoked key: the code must not reveal its state
    await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: a.admin });
    expect((await verifyKey(t, b.service, { key: k.token })).body).toMatchObject({ code: 'invalid_key', key_id: null });
  });

  describe('resource decisions', () => {
    const scope = { mcp_tool_ids: ['github__*', 'slack__post'], deny: { mcp_tool_ids: ['github__delete*'] } };

    it.each([
      ['mcp_tool', 'github__create_issue', true, 'valid', 'mcp_tool_ids:github__*'],
      ['mcp_tool', 'slack__post', true, 'valid', 'mcp_tool_ids:slack__post'],
      ['mcp_tool', 'github__delete_repo', false, 'forbidden_resource', 'deny.mcp_tool_ids:github__delete*'],
      ['mcp_tool', 'slack__delete', false, 'forbidden_resource', null],
      ['mcp_tool', 'gitlab__create_issue', false, 'forbidden_resource', null],
      ['agent', 'agt_1', false, 'forbidden_resource', null],
    ])('%s %s → valid:%s code %s matched_rule %s', async (type, id, valid, code, rule) => {
      const { admin, service } = setup();
      const k = await createKey(t, admin, { permission_scope: scope });
      const v = await verifyKey(t, service, { key: k.token, resource: { type, id } });
      expect(v.status).toBe(200);
      expect(v.body).toMatchObject({ valid, code, key_id: k.id, allowed: valid, matched_rule: rule, resource: { type, id } });
    });

    it('a disabled key keeps its own code even for an allowed resource', async () => {
      const { admin, service } = setup();
      const k = await createKey(t, admin, { permission_scope: scope });
      await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } });
      const v = await verifyKey(t, service, { key: k.token, resource: { type: 'mcp_tool', id: 'github__x' } });
      expect(v.body).toMatchObject({ valid: false, code: 'disabled_key' });
    });

    it('an unknown resource type is 422', async () => {
      const { admin, service } = setup();
      const k = await createKey(t, admin);
      const v = await verifyKey(t, service, { key: k.token, resource: { type: 'spaceship', id: 'x' } });
      expect(v.status).toBe(422);
      expect(v.body.code).toBe('validation_failed');
    });
  });

  describe('who may call it', () => {
    it.each([
      ['developer', 403],
      ['auditor', 403],
      ['service', 200],
      ['admin', 200],
    ] as const)('%s → %i', async (role, status) => {
      const tenant = uniqueTenant();
      const admin = managementToken({ tenantId: tenant, roles: ['admin'] });
      const k = await createKey(t, admin);
      const caller = managementToken({ tenantId: tenant, sub: `${role}-1`, roles: [role] });
      const v = await verifyKey(t, caller, { key: k.token });
      expect(v.status).toBe(status);
      if (status === 403) {
        expect(v.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(v.body.code).toBe('forbidden');
        expect(v.body.valid).toBeUndefined();
      } else {
        expect(v.body).toMatchObject({ valid: true, key_id: k.id });
      }
    });

    it('without a JWT it is 401', async () => {
      const v = await t.request({ method: 'POST', url: '/api/v1/keys/verify', body: { key: 'tg_live_x' } });
      expect(v.status).toBe(401);
    });
  });

  it('answers HTTP 200 for every kind of invalid key', async () => {
    const { admin, service } = setup();
    const k = await createKey(t, admin);
    const keys = [flipOne(k.token, 10), APIKeyToken.generate('tg', 'live').value, 'nope'];
    for (const key of keys) {
      const v = await verifyKey(t, service, { key });
      expect(v.status).toBe(200);
      expect(v.headers['content-type']).toMatch(/^application\/json/);
      expect(v.body.valid).toBe(false);
    }
  });
});
