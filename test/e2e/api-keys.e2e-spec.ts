import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant, verifyKey } from '../support/factories';

describe('API keys (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates a key, returns the token once, stores only a peppered hash', async () => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant });
    const created = await createKey(t, jwt, { name: 'ci-bot' });
    expect(created.token).toMatch(/^tg_live_[A-Za-z0-9]{38}$/);
    expect(created.status).toBe('active');

    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${created.id}`, token: jwt });
    expect(got.status).toBe(200);
    expect(got.text).not.toContain(created.token);
    expect(got.body.token).toBeUndefined();

    const rows = await t.db.query(`SELECT * FROM api_keys WHERE id = $1`, [created.id]);
    expect(rows).toHaveLength(1);
    const all = JSON.stringify(rows[0]);
    expect(all).not.toContain(created.token);
    const plainSha = require('node:crypto').createHash('sha256').update(created.token).digest('hex');
    expect(rows[0].key_hash).not.toBe(plainSha);

    const v = await verifyKey(t, jwt, { key: created.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: true, code: 'valid', key_id: created.id, tenant_id: tenant });
  });
});
