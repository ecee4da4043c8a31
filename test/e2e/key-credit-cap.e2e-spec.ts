import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, writePlansFile } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

const ERROR_META = 'io.tollgate/error';
const FILE_PLANS = [
  { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 10_000, tokens_per_month: 1_000_000_000 }, max_keys: 10, included_credits: 1_000 },
];

/**
 * Issue 4: an optional monthly credit cap per API key, enforced exactly
 * (inside tollgate_admit, under concurrency), refunded on upstream failures,
 * managed through POST/PATCH /api-keys.
 */
describe('Per-key monthly credit cap (e2e)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let baseUrl: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    const plansFile = writePlansFile(FILE_PLANS);
    fake = await new FakeUpstream().start();
    t = await createTestApp({ PLANS_FILE: plansFile });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t?.close();
    await fake?.stop();
  });

  async function tenant() {
    const id = uniqueTenant('cap');
    const admin = managementToken({ tenantId: id });
    await setPlan(t, id, 'roomy');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    return { id, admin };
  }

  function call(key: string, name = 'fake__echo', args: Record<string, unknown> = { message: 'hi' }) {
    return t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key }, body: { arguments: args } });
  }

  async function spent(keyId: string): Promise<number> {
    const rows = await t.db.query(`SELECT credits FROM key_spend WHERE key_id = $1`, [keyId]);
    return rows.reduce((n: number, r: { credits: string }) => n + Number(r.credits), 0);
  }

  async function balance(admin: string): Promise<number> {
    const res = await t.request({ method: 'GET', url: '/api/v1/credits', token: admin });
    expect(res.status).toBe(200);
    return res.body.balance;
  }

  it('POST with a cap → the key shows it (POST, GET, list); without one → null', async () => {
    const { admin } = await tenant();
    const capped = await createKey(t, admin, { monthly_credit_cap: 3 });
    expect(capped.monthly_credit_cap).toBe(3);
    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${capped.id}`, token: admin });
    expect(got.status).toBe(200);
    expect(got.body.monthly_credit_cap).toBe(3);
    const plain = await createKey(t, admin);
    expect(plain.monthly_credit_cap).toBeNull();
    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
    expect(Object.fromEntries(list.body.data.map((k: { id: string; monthly_credit_cap: number | null }) => [k.id, k.monthly_credit_cap]))).toEqual({
      [capped.id]: 3,
      [plain.id]: null,
    });
    const zero = await createKey(t, admin, { monthly_credit_cap: 0 });
    expect(zero.monthly_credit_cap).toBe(0);
    const refused = await call(zero.token);
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({ code: 'insufficient_credits', key_cap: 0, key_spent: 0, required: 1 });
  });

  it('cap 3 at price 1, 10 concurrent calls → exactly 3 succeed, 7 × 402 with key_cap 3; another key of the tenant is unaffected', async () => {
    const { admin } = await tenant();
    const capped = await createKey(t, admin, { monthly_credit_cap: 3 });
    const other = await createKey(t, admin);
    const results = await Promise.all(Array.from({ length: 10 }, () => call(capped.token)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    const refused = results.filter((r) => r.status === 402);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(r.body).toMatchObject({ code: 'insufficient_credits', key_cap: 3, key_spent: 3, required: 1, balance: 997 });
      expect(r.body.detail).toMatch(/monthly credit cap of 3/);
    }
    expect(await spent(capped.id)).toBe(3);
    expect(await balance(admin)).toBe(997);
    // The refused calls cost nothing: only three charges in the ledger.
    const tx = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: admin });
    expect(tx.body.data.filter((r: { type: string }) => r.type === 'charge')).toHaveLength(3);

    for (let i = 0; i < 5; i++) expect((await call(other.token)).status).toBe(200);
    expect(await balance(admin)).toBe(992);

    // On /mcp the refusal is an isError result carrying the numbers.
    const client = new Client({ name: 'e2e-cap', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': capped.token } } }));
    clients.push(client);
    const viaMcp = await client.callTool({ name: 'fake__echo', arguments: { message: 'capped' } });
    expect(viaMcp.isError).toBe(true);
    expect((viaMcp._meta as Record<string, any>)[ERROR_META]).toMatchObject({ code: 'insufficient_credits', key_cap: 3, key_spent: 3 });
  });

  it('an upstream failure is refunded and frees room under the cap', async () => {
    const { admin } = await tenant();
    const key = await createKey(t, admin, { monthly_credit_cap: 2 });
    expect((await call(key.token)).status).toBe(200);
    const failed = await call(key.token, 'fake__boom', {});
    expect(failed.status).toBe(502);
    expect(await spent(key.id)).toBe(1);
    expect((await call(key.token)).status).toBe(200);
    expect(await spent(key.id)).toBe(2);
    expect((await call(key.token)).status).toBe(402);
    expect(await balance(admin)).toBe(998);
  });

  it('a rotation carries on the month\'s spend: the successor does not get the cap again, and both secrets share it during the grace period', async () => {
    const { admin } = await tenant();
    const key = await createKey(t, admin, { monthly_credit_cap: 3 });
    expect((await call(key.token)).status).toBe(200);
    expect((await call(key.token)).status).toBe(200);
    const rotated = await t.request({ method: 'POST', url: `/api/v1/api-keys/${key.id}/rotate`, token: admin, body: { grace_period_seconds: 300 } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.monthly_credit_cap).toBe(3);
    // One credit left for the chain: the new secret takes it, then both are refused.
    expect((await call(rotated.body.token)).status).toBe(200);
    const refusedNew = await call(rotated.body.token);
    expect(refusedNew.status).toBe(402);
    expect(refusedNew.body).toMatchObject({ code: 'insufficient_credits', key_cap: 3 });
    expect((await call(key.token)).status).toBe(402);
    // Rotating again (grace 0) does not reset it either.
    const again = await t.request({ method: 'POST', url: `/api/v1/api-keys/${rotated.body.id}/rotate`, token: admin, body: { grace_period_seconds: 0 } });
    expect(again.status).toBe(201);
    expect((await call(again.body.token)).status).toBe(402);
    const ledger = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: admin });
    const charges = ledger.body.data.filter((r: { type: string }) => r.type === 'charge');
    expect(charges).toHaveLength(3);
    // The ledger names the key that called; the spend is the chain's, on its first key.
    expect(charges.filter((r: { key_id: string }) => r.key_id === rotated.body.id)).toHaveLength(1);
    expect(await spent(key.id)).toBe(3);
    expect(await spent(rotated.body.id)).toBe(0);
  });

  it('the budget a capped key sees (M6 _meta, verify) is what the key may still spend, not the tenant\'s balance', async () => {
    const { admin } = await tenant();
    const key = await createKey(t, admin, { monthly_credit_cap: 3 });
    const first = await call(key.token);
    expect(first.status).toBe(200);
    expect(first.body._meta['io.tollgate/budget'].credits_remaining).toBe(2);
    const service = managementToken({ tenantId: (await t.request({ method: 'GET', url: `/api/v1/api-keys/${key.id}`, token: admin })).body.tenant_id, roles: ['service'] });
    const verified = await t.request({ method: 'POST', url: '/api/v1/keys/verify', token: service, body: { key: key.token, cost: 1 } });
    expect(verified.body).toMatchObject({ valid: true, remaining: { credits_remaining: 1 } });
    // An uncapped key of the same tenant sees the tenant's balance (1,000 granted, 2 spent, 1 more now).
    const free = await createKey(t, admin);
    const other = await call(free.token);
    expect(other.body._meta['io.tollgate/budget'].credits_remaining).toBe(997);
    // A failed call refunds the key's spend too: the budget says so.
    const failed = await call(key.token, 'fake__boom', {});
    expect(failed.status).toBe(502);
    expect(await spent(key.id)).toBe(2);
  });

  it('an upstream failure of a rotated key is refunded on its chain\'s spend', async () => {
    const { admin } = await tenant();
    const key = await createKey(t, admin, { monthly_credit_cap: 1 });
    const rotated = await t.request({ method: 'POST', url: `/api/v1/api-keys/${key.id}/rotate`, token: admin, body: { grace_period_seconds: 0 } });
    expect((await call(rotated.body.token, 'fake__boom', {})).status).toBe(502);
    expect(await spent(key.id)).toBe(0);
    expect((await call(rotated.body.token)).status).toBe(200);
    expect(await spent(key.id)).toBe(1);
  });

  it('PATCH sets, raises and lifts (null) the cap at once; audited', async () => {
    const { id, admin } = await tenant();
    const key = await createKey(t, admin);
    const set = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${key.id}`, token: admin, body: { monthly_credit_cap: 1 } });
    expect(set.status).toBe(200);
    expect(set.body.monthly_credit_cap).toBe(1);
    expect((await call(key.token)).status).toBe(200);
    expect((await call(key.token)).status).toBe(402);

    const lifted = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${key.id}`, token: admin, body: { monthly_credit_cap: null } });
    expect(lifted.status).toBe(200);
    expect(lifted.body.monthly_credit_cap).toBeNull();
    for (let i = 0; i < 3; i++) expect((await call(key.token)).status).toBe(200);
    expect((await t.request({ method: 'GET', url: `/api/v1/api-keys/${key.id}`, token: admin })).body.monthly_credit_cap).toBeNull();

    // Spend is counted without a cap too: a cap set mid-month counts what was already spent.
    const reset = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${key.id}`, token: admin, body: { monthly_credit_cap: 5 } });
    expect(reset.status).toBe(200);
    expect((await call(key.token)).status).toBe(200);
    expect((await call(key.token)).status).toBe(402);

    const events = await t.db.query(
      `SELECT action, metadata FROM audit_events WHERE tenant_id = $1 AND target_id = $2 AND action IN ('api_key.created', 'api_key.updated') ORDER BY seq`,
      [id, key.id],
    );
    expect(events.map((e: { action: string; metadata: Record<string, unknown> }) => [e.action, e.metadata.monthly_credit_cap])).toEqual([
      ['api_key.created', null],
      ['api_key.updated', 1],
      ['api_key.updated', null],
      ['api_key.updated', 5],
    ]);
  });

  it.each([-1, 'x', 1.5, true, 2 ** 53])('an invalid cap %p → 422 on POST and PATCH, nothing changes', async (cap) => {
    const { admin } = await tenant();
    const created = await t.request({ method: 'POST', url: '/api/v1/api-keys', token: admin, body: { name: `bad-${randomBytes(3).toString('hex')}`, permission_scope: { mcp_tool_ids: ['*'] }, monthly_credit_cap: cap } });
    expect(created.status).toBe(422);
    expect(created.body.code).toBe('validation_failed');
    const key = await createKey(t, admin, { monthly_credit_cap: 4 });
    const patched = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${key.id}`, token: admin, body: { monthly_credit_cap: cap } });
    expect(patched.status).toBe(422);
    expect(patched.body.code).toBe('validation_failed');
    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${key.id}`, token: admin });
    expect(got.body.monthly_credit_cap).toBe(4);
    expect(got.body.updated_at).toBe(key.updated_at);
    const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
    expect(list.body.data).toHaveLength(1);
  });
});
