import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, verifyKey, writePlansFile } from '../support/factories';

const FILE_PLANS = [
  { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 10_000, tokens_per_month: 1_000_000 }, max_keys: 10, included_credits: 100 },
  { id: 'tight', name: 'Tight', rate_limits: { per_minute: 3, per_hour: 100 }, quotas: { requests_per_month: 1_000, tokens_per_month: 1_000_000 }, max_keys: 10, included_credits: 100 },
  { id: 'tiny', name: 'Tiny', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 2, tokens_per_month: 1_000_000 }, max_keys: 10, included_credits: 100 },
];

/**
 * K8 "and charge it N": POST /api/v1/keys/verify with `cost` uses a valid,
 * allowed key the way a tool call uses it (a request in the key's rate-limit
 * windows, then one request of the month's quota and `cost` credits within the
 * key's cap, a ledger row, usage), exactly under concurrency, and charges
 * nothing when it answers valid: false.
 */
describe('POST /api/v1/keys/verify with cost (e2e)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ PLANS_FILE: writePlansFile(FILE_PLANS) });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  async function tenant(plan = 'roomy') {
    const id = uniqueTenant('vcost');
    const admin = managementToken({ tenantId: id, sub: 'admin-1', roles: ['admin'] });
    const service = managementToken({ tenantId: id, sub: 'svc-1', roles: ['service'] });
    await setPlan(t, id, plan);
    return { id, admin, service };
  }

  /**
   * What the tenant has been charged and counted: ledger charges, quota requests this month, balance
   * (every plan here includes 100 credits, granted when tenant() sets the plan).
   */
  async function books(tenantId: string) {
    const charges = await t.db.query(`SELECT amount, key_id, tool FROM credit_transactions WHERE tenant_id = $1 AND type = 'charge' ORDER BY seq`, [tenantId]);
    const quota = await t.db.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM quota_counters WHERE tenant_id = $1`, [tenantId]);
    const account = await t.db.query(`SELECT balance FROM credit_accounts WHERE tenant_id = $1`, [tenantId]);
    return {
      charges: charges.map((r: { amount: string; key_id: string; tool: string }) => ({ amount: Number(r.amount), key_id: r.key_id, tool: r.tool })),
      requests: quota[0].n as number,
      balance: account.length ? Number(account[0].balance) : null,
    };
  }

  it('without cost nothing is counted or charged, and remaining is null', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin);
    const v = await verifyKey(t, service, { key: k.token });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: true, code: 'valid', remaining: null, ratelimit: null, details: null });
    expect(await books(id)).toEqual({ charges: [], requests: 0, balance: 100 });
  });

  it('cost 7: valid, one request and 7 credits taken (ledger row with the key), remaining says what is left, usage records it', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin, { user_id: 'user-3' });
    const v = await verifyKey(t, service, { key: k.token, cost: 7 });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({
      valid: true,
      code: 'valid',
      key_id: k.id,
      plan: 'roomy',
      details: null,
      remaining: { plan: 'roomy', requests_remaining: 9_999, tokens_remaining: 1_000_000, credits_remaining: 93 },
    });
    expect(Date.parse(v.body.remaining.reset_at)).toBeGreaterThan(Date.now());
    // The tightest of the key's windows after this use: roomy allows 1,000 a minute and 10,000 an hour.
    expect(v.body.ratelimit).toMatchObject({ window: 'minute', limit: 1_000, remaining: 999 });
    expect(v.body.ratelimit.reset_seconds).toBeGreaterThan(0);
    expect(v.body.ratelimit.reset_seconds).toBeLessThanOrEqual(60);
    expect(await books(id)).toEqual({ charges: [{ amount: -7, key_id: k.id, tool: 'verify' }], requests: 1, balance: 93 });

    await t.app.get(UsageBuffer).flush();
    const usage = await t.db.query(`SELECT key_id, user_id, tool, requests, tokens, credits FROM usage_buckets WHERE tenant_id = $1`, [id]);
    expect(usage.map((r: Record<string, unknown>) => ({ ...r, requests: Number(r.requests), tokens: Number(r.tokens), credits: Number(r.credits) }))).toEqual([
      { key_id: k.id, user_id: 'user-3', tool: 'verify', requests: 1, tokens: 0, credits: 7 },
    ]);
  });

  it('with a resource the ledger names it; a forbidden resource is refused before any charge', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['github__*'] } });
    const ok = await verifyKey(t, service, { key: k.token, resource: { type: 'mcp_tool', id: 'github__create_issue' }, cost: 2 });
    expect(ok.body).toMatchObject({ valid: true, code: 'valid', allowed: true, matched_rule: 'mcp_tool_ids:github__*', remaining: { credits_remaining: 98 } });
    const no = await verifyKey(t, service, { key: k.token, resource: { type: 'mcp_tool', id: 'slack__post' }, cost: 2 });
    expect(no.body).toMatchObject({ valid: false, code: 'forbidden_resource', allowed: false, remaining: null, details: null });
    expect(await books(id)).toEqual({ charges: [{ amount: -2, key_id: k.id, tool: 'verify:mcp_tool:github__create_issue' }], requests: 1, balance: 98 });
  });

  it('cost 0 counts the request and charges no credits', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin);
    const v = await verifyKey(t, service, { key: k.token, cost: 0 });
    expect(v.body).toMatchObject({ valid: true, code: 'valid', remaining: { requests_remaining: 9_999, credits_remaining: 100 } });
    const b = await books(id);
    expect(b.requests).toBe(1);
    expect(b.balance).toBe(100);
    expect(b.charges).toEqual([]);
  });

  it('more than the balance: valid false, insufficient_credits with the numbers, nothing charged or counted', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin);
    expect((await verifyKey(t, service, { key: k.token, cost: 60 })).body).toMatchObject({ valid: true, remaining: { credits_remaining: 40 } });
    const v = await verifyKey(t, service, { key: k.token, cost: 41 });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ valid: false, code: 'insufficient_credits', key_id: k.id, remaining: null, details: { balance: 40, required: 41 } });
    expect(await books(id)).toEqual({ charges: [{ amount: -60, key_id: k.id, tool: 'verify' }], requests: 1, balance: 40 });
  });

  it("past the key's monthly credit cap: insufficient_credits with key_cap and key_spent", async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin, { monthly_credit_cap: 10 });
    expect((await verifyKey(t, service, { key: k.token, cost: 8 })).body).toMatchObject({ valid: true });
    const v = await verifyKey(t, service, { key: k.token, cost: 3 });
    expect(v.body).toMatchObject({ valid: false, code: 'insufficient_credits', details: { key_cap: 10, key_spent: 8, required: 3 } });
    expect(await books(id)).toEqual({ charges: [{ amount: -8, key_id: k.id, tool: 'verify' }], requests: 1, balance: 92 });
  });

  it("past the month's request quota: quota_exceeded with quota_info, nothing charged", async () => {
    const { id, admin, service } = await tenant('tiny');
    const k = await createKey(t, admin);
    for (let i = 0; i < 2; i++) expect((await verifyKey(t, service, { key: k.token, cost: 1 })).body.valid).toBe(true);
    const v = await verifyKey(t, service, { key: k.token, cost: 1 });
    expect(v.body).toMatchObject({ valid: false, code: 'quota_exceeded', remaining: null, details: { quota_info: { plan: 'tiny', limit: 2, used: 2, remaining: 0 } } });
    expect(await books(id)).toMatchObject({ requests: 2, balance: 98 });
  });

  it('invalid, disabled and other tenants\' keys are never charged', async () => {
    const { id, admin, service } = await tenant();
    const other = await tenant();
    const k = await createKey(t, admin);
    const foreign = await createKey(t, other.admin);
    expect((await verifyKey(t, service, { key: foreign.token, cost: 5 })).body).toMatchObject({ valid: false, code: 'invalid_key', remaining: null });
    expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } })).status).toBe(200);
    expect((await verifyKey(t, service, { key: k.token, cost: 5 })).body).toMatchObject({ valid: false, code: 'disabled_key', remaining: null });
    expect(await books(id)).toEqual({ charges: [], requests: 0, balance: 100 });
    expect(await books(other.id)).toEqual({ charges: [], requests: 0, balance: 100 });
  });

  it("the key's own rate limit: past it, rate_limited with retry_after and nothing charged; shared with the agent routes; verifications without cost do not count", async () => {
    const { id, admin, service } = await tenant('tight');
    const k = await createKey(t, admin);
    for (let i = 0; i < 5; i++) expect((await verifyKey(t, service, { key: k.token })).body).toMatchObject({ valid: true, ratelimit: null });
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ok = await verifyKey(t, service, { key: k.token, cost: 1 });
      expect(ok.body.valid).toBe(true);
      remaining.push(ok.body.ratelimit.remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    const v = await verifyKey(t, service, { key: k.token, cost: 1 });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({
      valid: false,
      code: 'rate_limited',
      remaining: null,
      ratelimit: { window: 'minute', limit: 3, remaining: 0 },
      details: { window: 'minute', quota_info: { plan: 'tight', limit: 3, remaining: 0 } },
    });
    expect(v.body.details.retry_after).toBeGreaterThan(0);
    expect(v.body.ratelimit.reset_seconds).toBe(v.body.details.retry_after);
    expect(await books(id)).toMatchObject({ requests: 3, balance: 97 });
    // The same windows as the agent routes: the key itself is now refused there too.
    const agent = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': k.token } });
    expect(agent.status).toBe(429);
    expect(agent.body.code).toBe('rate_limited');
  });

  it('30 concurrent verifications of cost 10 against 100 credits: exactly 10 valid, the balance ends at 0', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin);
    const answers = await Promise.all(Array.from({ length: 30 }, () => verifyKey(t, service, { key: k.token, cost: 10 })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.valid).length).toBe(10);
    expect(answers.filter((a) => !a.body.valid).every((a) => a.body.code === 'insufficient_credits')).toBe(true);
    const b = await books(id);
    expect(b.balance).toBe(0);
    expect(b.requests).toBe(10);
    expect(b.charges).toHaveLength(10);
  });

  it('a resource id with a control character is 422, and nothing is charged', async () => {
    const { id, admin, service } = await tenant();
    const k = await createKey(t, admin);
    for (const rid of ['a\u0000b', 'tab\there', 'bell\u0007']) {
      const v = await verifyKey(t, service, { key: k.token, resource: { type: 'mcp_tool', id: rid }, cost: 1 });
      expect(v.status).toBe(422);
      expect(v.body.code).toBe('validation_failed');
    }
    expect(await books(id)).toEqual({ charges: [], requests: 0, balance: 100 });
  });

  it('a cost that is not a whole number from 0 to 1e9 is 422 validation_failed', async () => {
    const { admin, service } = await tenant();
    const k = await createKey(t, admin);
    for (const cost of [-1, 1.5, '3', 1_000_000_001, null, true, {}]) {
      const v = await verifyKey(t, service, { key: k.token, cost });
      expect(v.status).toBe(422);
      expect(v.body.code).toBe('validation_failed');
    }
  });
});
