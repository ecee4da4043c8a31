import { createHmac, randomBytes } from 'node:crypto';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

/** API.md's signature, computed here independently of the implementation. */
function signPayload(secret: string, timestamp: number, raw: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`;
}

const SECRET = 'whsec-billing-e2e-0123456789abcdef';

/**
 * P5: POST /api/v1/billing/webhook exactly as API.md specifies —
 * `Tollgate-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>`,
 * 5-minute tolerance, idempotent by event id, subscription.updated and
 * credits.purchased; every refusal changes nothing.
 */
describe('Billing webhook (e2e)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ BILLING_WEBHOOK_SECRET: SECRET });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const eventId = () => `evt_${randomBytes(8).toString('hex')}`;
  const now = () => Math.floor(Date.now() / 1000);

  function post(raw: string, signature?: string, app: TestApp = t) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (signature !== undefined) headers['tollgate-signature'] = signature;
    return app.request({ method: 'POST', url: '/api/v1/billing/webhook', rawBody: raw, headers });
  }

  function send(event: unknown, opts: { at?: number; secret?: string } = {}) {
    const raw = JSON.stringify(event);
    return post(raw, signPayload(opts.secret ?? SECRET, opts.at ?? now(), raw));
  }

  /** A tenant with an admin token and an agent key (free plan until a webhook says otherwise). */
  async function tenantWithKey() {
    const tenant = uniqueTenant('bill');
    const admin = managementToken({ tenantId: tenant });
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['*'] } });
    return { tenant, admin, key: key.token };
  }

  async function state(tenant: string, admin: string) {
    const credits = await t.request({ method: 'GET', url: '/api/v1/credits', token: admin });
    expect(credits.status).toBe(200);
    const ledger = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: admin });
    expect(ledger.status).toBe(200);
    const events = await t.db.query(`SELECT count(*)::int AS n FROM billing_events WHERE tenant_id = $1`, [tenant]);
    const audits = await t.db.query(`SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1 AND action IN ('plan.changed', 'credits.purchased')`, [tenant]);
    return {
      balance: credits.body.balance as number,
      plan: credits.body.plan as string,
      status: credits.body.subscription_status as string,
      ledger: ledger.body.data.length as number,
      events: events[0].n as number,
      audits: audits[0].n as number,
    };
  }

  async function agentLimit(key: string): Promise<string> {
    const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key } });
    expect(res.status).toBe(200);
    return String(res.headers['x-ratelimit-limit']);
  }

  async function planLimit(id: string): Promise<number> {
    const plans = await t.request({ method: 'GET', url: '/api/v1/plans' });
    return plans.body.data.find((p: { id: string }) => p.id === id).rate_limits.per_minute;
  }

  it('a signed subscription.updated to pro → 200 processed, and the very next agent request has pro limits', async () => {
    const { tenant, admin, key } = await tenantWithKey();
    expect(await agentLimit(key)).toBe(String(await planLimit('free')));
    const id = eventId();
    const res = await send({ id, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'active' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id, status: 'processed' });
    expect(await agentLimit(key)).toBe(String(await planLimit('pro')));
    expect(await state(tenant, admin)).toMatchObject({ plan: 'pro', status: 'active', events: 1 });
  });

  it('credits.purchased adds to the balance with a purchase ledger row; a replayed id is 200 duplicate and changes nothing', async () => {
    const { tenant, admin } = await tenantWithKey();
    const before = await state(tenant, admin);
    const id = eventId();
    const event = { id, type: 'credits.purchased', data: { tenant_id: tenant, amount: 5000 } };
    const res = await send(event);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id, status: 'processed' });
    const after = await state(tenant, admin);
    expect(after.balance).toBe(before.balance + 5000);
    expect(after.ledger).toBe(before.ledger + 1);
    const ledger = await t.request({ method: 'GET', url: '/api/v1/credits/transactions', token: admin });
    expect(ledger.body.data[0]).toMatchObject({ type: 'purchase', amount: 5000, balance_after: before.balance + 5000, reference: `event:${id}` });

    // Replay: same id, freshly signed (so only the id makes it a replay), even with another amount.
    const replay = await send({ ...event, data: { tenant_id: tenant, amount: 7000 } });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ id, status: 'duplicate' });
    const again = await send(event);
    expect(again.body.status).toBe('duplicate');
    expect(await state(tenant, admin)).toEqual(after);
  });

  it('a replayed subscription.updated id is duplicate and does not change the plan back', async () => {
    const { tenant, admin } = await tenantWithKey();
    const id = eventId();
    expect((await send({ id, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'active' } })).body.status).toBe('processed');
    expect((await send({ id: eventId(), type: 'subscription.updated', data: { tenant_id: tenant, plan: 'enterprise', status: 'active' } })).body.status).toBe('processed');
    const before = await state(tenant, admin);
    expect(before.plan).toBe('enterprise');
    const replay = await send({ id, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'active' } });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ id, status: 'duplicate' });
    expect(await state(tenant, admin)).toEqual(before);
  });

  describe('refused deliveries are 401 and change nothing', () => {
    let tenant: string;
    let admin: string;
    let key: string;
    let before: Awaited<ReturnType<typeof state>>;
    const upgrade = () => ({ id: eventId(), type: 'subscription.updated', data: { tenant_id: tenant, plan: 'enterprise', status: 'active' } });
    const purchase = () => ({ id: eventId(), type: 'credits.purchased', data: { tenant_id: tenant, amount: 100 } });

    beforeAll(async () => {
      ({ tenant, admin, key } = await tenantWithKey());
      before = await state(tenant, admin);
    });

    afterEach(async () => {
      expect(await state(tenant, admin)).toEqual(before);
      expect(await agentLimit(key)).toBe(String(await planLimit('free')));
    });

    it('signed with the wrong secret', async () => {
      for (const e of [upgrade(), purchase()]) {
        const res = await send(e, { secret: 'not-the-secret' });
        expect(res.status).toBe(401);
        expect(String(res.headers['content-type'])).toContain('application/problem+json');
        expect(res.body.code).toBe('unauthenticated');
      }
    });

    it('a timestamp 6 minutes old (correct signature), and one 6 minutes ahead', async () => {
      for (const at of [now() - 360, now() + 360]) {
        for (const e of [upgrade(), purchase()]) {
          const res = await send(e, { at });
          expect(res.status).toBe(401);
          expect(res.body.detail).toMatch(/tolerance|timestamp/i);
        }
      }
      // Just inside the tolerance still works (on another tenant, so this tenant stays unchanged).
      const other = uniqueTenant('bill-ok');
      const ok = await send({ id: eventId(), type: 'credits.purchased', data: { tenant_id: other, amount: 1 } }, { at: now() - 240 });
      expect(ok.status).toBe(200);
    });

    it('the body altered after signing', async () => {
      const raw = JSON.stringify(purchase());
      const signature = signPayload(SECRET, now(), raw);
      const res = await post(raw.replace('"amount":100', '"amount":100000'), signature);
      expect(res.status).toBe(401);
      const res2 = await post(raw.replace(tenant, `${tenant} `), signature);
      expect(res2.status).toBe(401);
    });

    it('no signature header, or a malformed one', async () => {
      const raw = JSON.stringify(upgrade());
      expect((await post(raw)).status).toBe(401);
      expect((await post(raw, 'garbage')).status).toBe(401);
      expect((await post(raw, `t=${now()}`)).status).toBe(401);
      expect((await post(raw, `v1=${'0'.repeat(64)}`)).status).toBe(401);
    });

    it('an unknown event type is 422 (signed correctly), and a bad amount too', async () => {
      const res = await send({ id: eventId(), type: 'invoice.paid', data: { tenant_id: tenant, amount: 10 } });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(JSON.stringify(res.body.errors)).toContain('type');
      const bad = await send({ id: eventId(), type: 'credits.purchased', data: { tenant_id: tenant, amount: -5 } });
      expect(bad.status).toBe(422);
      const badStatus = await send({ id: eventId(), type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'trialing' } });
      expect(badStatus.status).toBe(422);
    });
  });

  it('plan.changed and credits.purchased are audited with the billing service as actor', async () => {
    const { tenant, admin } = await tenantWithKey();
    const upId = eventId();
    const buyId = eventId();
    expect((await send({ id: upId, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'past_due' } })).status).toBe(200);
    expect((await send({ id: buyId, type: 'credits.purchased', data: { tenant_id: tenant, amount: 250 } })).status).toBe(200);

    const changed = await t.request({ method: 'GET', url: '/api/v1/audit-logs?action=plan.changed', token: admin });
    expect(changed.status).toBe(200);
    expect(changed.body.data).toHaveLength(1);
    expect(changed.body.data[0]).toMatchObject({
      action: 'plan.changed',
      actor: { type: 'service' },
      target: { type: 'tenant', id: tenant },
      metadata: expect.objectContaining({ plan: 'pro', status: 'past_due', previous_plan: 'free', reference: upId }),
    });
    const purchased = await t.request({ method: 'GET', url: '/api/v1/audit-logs?action=credits.purchased', token: admin });
    expect(purchased.body.data).toHaveLength(1);
    expect(purchased.body.data[0]).toMatchObject({
      action: 'credits.purchased',
      actor: { type: 'service' },
      metadata: expect.objectContaining({ amount: 250, reference: `event:${buyId}` }),
    });
    // past_due: billed as pro, limited as free.
    expect(await state(tenant, admin)).toMatchObject({ plan: 'free', status: 'past_due' });
  });

  it('without BILLING_WEBHOOK_SECRET the webhook is off: 404, even for a well-signed event', async () => {
    const off = await createTestApp({ BILLING_WEBHOOK_SECRET: undefined });
    try {
      const tenant = uniqueTenant('bill-off');
      const raw = JSON.stringify({ id: eventId(), type: 'credits.purchased', data: { tenant_id: tenant, amount: 10 } });
      const res = await post(raw, signPayload(SECRET, now(), raw), off);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
      expect((await off.db.query(`SELECT count(*)::int AS n FROM credit_transactions WHERE tenant_id = $1`, [tenant]))[0].n).toBe(0);
    } finally {
      await off.close();
    }
  });
});
