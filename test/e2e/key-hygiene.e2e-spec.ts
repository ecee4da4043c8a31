import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, writePlansFile } from '../support/factories';

const FILE_PLANS = [
  { id: 'strict', name: 'Strict', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 10_000, tokens_per_month: 1_000_000 }, max_keys: 50, included_credits: 0, max_key_lifetime_days: 30 },
];
const DAY = 86_400_000;

/** K10: GET /api/v1/api-keys/hygiene, the key hygiene report. */
describe('GET /api/v1/api-keys/hygiene (e2e)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ PLANS_FILE: writePlansFile(FILE_PLANS) });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const inDays = (d: number) => new Date(Date.now() + d * DAY).toISOString();
  const setColumns = (id: string, sql: string, ...values: unknown[]) => t.db.query(`UPDATE api_keys SET ${sql} WHERE id = $1`, [id, ...values]);

  async function fixture() {
    const tenant = uniqueTenant('hyg');
    const admin = managementToken({ tenantId: tenant, sub: 'admin-1', roles: ['admin'] });
    await setPlan(t, tenant, 'strict');
    const k1 = await createKey(t, admin); // no expiry, no cap
    const k2 = await createKey(t, admin, { expires_at: inDays(10), monthly_credit_cap: 100 });
    const k3 = await createKey(t, admin, { expires_at: inDays(60), monthly_credit_cap: 5 });
    const k4 = await createKey(t, admin, { expires_at: inDays(20), monthly_credit_cap: 1 });
    const k5 = await createKey(t, admin);
    const k6 = await createKey(t, admin, { monthly_credit_cap: 1 });
    await setColumns(k2.id, 'last_used_at = $2', new Date(Date.now() - DAY));
    await setColumns(k3.id, 'last_used_at = $2', new Date(Date.now() - 40 * DAY));
    await setColumns(k4.id, 'created_at = $2', new Date(Date.now() - 40 * DAY));
    expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k5.id}`, token: admin })).status).toBe(204);
    expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k6.id}`, token: admin, body: { enabled: false } })).status).toBe(200);
    return { tenant, admin, k1, k2, k3, k4, k5, k6 };
  }

  it("lists the live keys that need attention, newest first, with counts per finding and the plan's maximum lifetime", async () => {
    const { admin, k1, k3, k4, k6 } = await fixture();
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene', token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      plan: 'strict',
      idle_days: 30,
      max_key_lifetime_days: 30,
      live_keys: 5,
      counts: { never_expires: 2, idle: 1, never_used: 1, no_credit_cap: 1, over_max_lifetime: 4 },
    });
    expect(res.body.keys.map((k: { key: { id: string }; findings: string[] }) => [k.key.id, k.findings])).toEqual([
      [k6.id, ['never_expires', 'over_max_lifetime']],
      [k3.id, ['idle', 'over_max_lifetime']],
      [k1.id, ['never_expires', 'no_credit_cap', 'over_max_lifetime']],
      [k4.id, ['never_used', 'over_max_lifetime']],
    ]);
    expect(res.body.keys[0].key).toMatchObject({ id: k6.id, status: 'disabled', monthly_credit_cap: 1 });
    expect(res.text).not.toMatch(/tg_[a-z]+_[0-9A-Za-z]{20,}/); // never a secret
  });

  it('a rotated key in its grace period ends with it (not flagged); expired and revoked keys are not live', async () => {
    const tenant = uniqueTenant('hyg');
    const admin = managementToken({ tenantId: tenant, sub: 'admin-1', roles: ['admin'] });
    await setPlan(t, tenant, 'strict');
    const old = await createKey(t, admin, { monthly_credit_cap: 1 });
    const rotated = await t.request({ method: 'POST', url: `/api/v1/api-keys/${old.id}/rotate`, token: admin, body: { grace_period_seconds: 3600 } });
    expect(rotated.status).toBe(201);
    const expired = await createKey(t, admin, { expires_at: inDays(1), monthly_credit_cap: 1 });
    await setColumns(expired.id, 'expires_at = $2', new Date(Date.now() - 1_000));
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene', token: admin });
    expect(res.body.live_keys).toBe(2); // the new key and the old one in its grace period
    expect(res.body.keys.map((k: { key: { id: string } }) => k.key.id)).toEqual([rotated.body.id]);
    expect(res.body.keys[0].findings).toEqual(expect.arrayContaining(['never_expires', 'over_max_lifetime']));
    expect(res.body.counts.never_expires).toBe(1);
  });

  it('idle_days moves the idle line', async () => {
    const { admin, k3, k4 } = await fixture();
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene?idle_days=50', token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ idle_days: 50, counts: { idle: 0, never_used: 0 } });
    const findings = new Map(res.body.keys.map((k: { key: { id: string }; findings: string[] }) => [k.key.id, k.findings]));
    expect(findings.get(k3.id)).toEqual(['over_max_lifetime']);
    expect(findings.get(k4.id)).toEqual(['over_max_lifetime']);
  });

  it('on a plan without a maximum lifetime there is no over_max_lifetime', async () => {
    const tenant = uniqueTenant('hyg');
    const admin = managementToken({ tenantId: tenant, sub: 'admin-1', roles: ['admin'] });
    const k = await createKey(t, admin);
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene', token: admin });
    expect(res.body).toMatchObject({ plan: 'free', max_key_lifetime_days: null, live_keys: 1, counts: { over_max_lifetime: 0, never_expires: 1, no_credit_cap: 1 } });
    expect(res.body.keys).toEqual([{ key: expect.objectContaining({ id: k.id }), findings: ['never_expires', 'no_credit_cap'] }]);
    const plans = await t.request({ method: 'GET', url: '/api/v1/plans', token: admin });
    expect(plans.body.data.find((p: { id: string }) => p.id === 'strict').max_key_lifetime_days).toBe(30);
    expect(plans.body.data.find((p: { id: string }) => p.id === 'free').max_key_lifetime_days).toBeNull();
  });

  it("is for admins (a developer is 403), sees only the caller's tenant, and refuses a bad idle_days with 422", async () => {
    const { tenant, admin } = await fixture();
    const dev = managementToken({ tenantId: tenant, sub: 'dev-1', roles: ['developer'] });
    const denied = await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene', token: dev });
    expect(denied.status).toBe(403);
    const other = managementToken({ tenantId: uniqueTenant('hyg'), sub: 'admin-2', roles: ['admin'] });
    expect((await t.request({ method: 'GET', url: '/api/v1/api-keys/hygiene', token: other })).body).toMatchObject({ live_keys: 0, keys: [] });
    for (const q of ['idle_days=0', 'idle_days=abc', 'idle_days=3651']) {
      const bad = await t.request({ method: 'GET', url: `/api/v1/api-keys/hygiene?${q}`, token: admin });
      expect(bad.status).toBe(422);
      expect(bad.body.code).toBe('validation_failed');
    }
  });
});
