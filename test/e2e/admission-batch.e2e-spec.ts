import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { DataSource } from 'typeorm';
import { AdmissionStore, AdmitOutcome } from '../../src/plans/domain/billing.repositories';
import { PostgresAdmissionStore } from '../../src/plans/infrastructure/typeorm-billing.repositories';
import { createTestApp, TestApp } from '../support/create-test-app';
import { uniqueTenant } from '../support/factories';

const PERIOD = '2026-11-01';
const KEYS = 3;

interface Call {
  price: number;
  key: number;
  cap: number | null;
}

interface Scenario {
  quota: number;
  maxTokens: number;
  grant: number;
  startBalance: number;
  calls: Call[];
  chunks: number[];
}

/**
 * Issue 7: a tenant's admissions go to PostgreSQL in batches
 * (tollgate_admit_many, KeyedBatcher). A batch must decide each call exactly
 * as tollgate_admit() — the function each call used alone, whose semantics the
 * issue 4 suites test through the API — would have, one call after the other:
 * same outcomes, same quota, balance, ledger rows (in order, with the balance
 * after each) and per-key spend.
 */
describe('Admissions in batches (e2e, real PostgreSQL)', () => {
  let t: TestApp;
  let ds: DataSource;
  let store: PostgresAdmissionStore;

  beforeAll(async () => {
    t = await createTestApp();
    ds = t.db;
    store = t.app.get(AdmissionStore) as PostgresAdmissionStore;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  async function freshTenant(label: string, startBalance: number): Promise<string> {
    const tenant = uniqueTenant(label);
    await ds.query(`INSERT INTO tenants (id) VALUES ($1)`, [tenant]);
    if (startBalance > 0) await ds.query(`INSERT INTO credit_accounts (tenant_id, balance) VALUES ($1, $2)`, [tenant, startBalance]);
    return tenant;
  }

  /** Everything an admission writes, with key ids replaced by their index so two tenants compare. */
  async function stateOf(tenant: string, keys: string[]) {
    const [quota] = await ds.query(`SELECT requests FROM quota_counters WHERE tenant_id = $1 AND period = $2`, [tenant, PERIOD]);
    const [account] = await ds.query(`SELECT balance, to_char(last_grant_period, 'YYYY-MM-DD') AS last FROM credit_accounts WHERE tenant_id = $1`, [tenant]);
    const ledger: { type: string; amount: string; balance_after: string; key_id: string | null; tool: string | null; reference: string | null }[] = await ds.query(
      `SELECT type, amount, balance_after, key_id, tool, reference FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`,
      [tenant],
    );
    const spend: { key_id: string; credits: string }[] = await ds.query(`SELECT key_id, credits FROM key_spend WHERE key_id = ANY($1::uuid[]) AND period = $2`, [keys, PERIOD]);
    return {
      requests: quota ? Number(quota.requests) : 0,
      balance: account ? Number(account.balance) : null,
      lastGrant: account?.last ?? null,
      ledger: ledger.map((r) => ({
        type: r.type,
        amount: Number(r.amount),
        after: Number(r.balance_after),
        key: r.key_id === null ? null : keys.indexOf(r.key_id),
        tool: r.tool,
        reference: r.reference,
      })),
      spend: keys.map((k) => Number(spend.find((s) => s.key_id === k)?.credits ?? 0)),
    };
  }

  const args = (s: Scenario, c: Call, i: number, keys: string[]) => ({
    maxRequests: s.quota,
    maxTokens: s.maxTokens,
    price: c.price,
    key: keys[c.key],
    tool: `up__tool_${i % 2}`,
    grant: s.grant,
    grantRef: `monthly:2026-11:test`,
    cap: c.cap,
  });

  it('decides a batch exactly as the same calls one by one through tollgate_admit() (property, 60 random sequences)', async () => {
    const call = fc.record({ price: fc.integer({ min: 0, max: 4 }), key: fc.integer({ min: 0, max: KEYS - 1 }), cap: fc.option(fc.integer({ min: 0, max: 8 }), { freq: 2 }) });
    const scenario = fc.record({
      quota: fc.integer({ min: 0, max: 14 }),
      maxTokens: fc.constantFrom(0, 1_000_000),
      grant: fc.integer({ min: 0, max: 12 }),
      startBalance: fc.integer({ min: 0, max: 6 }),
      calls: fc.array(call, { minLength: 1, maxLength: 24 }),
      chunks: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 8 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const one = await freshTenant('one', s.startBalance);
        const many = await freshTenant('many', s.startBalance);
        const keysOne = Array.from({ length: KEYS }, () => randomUUID());
        const keysMany = Array.from({ length: KEYS }, () => randomUUID());

        const singles: unknown[] = [];
        for (const [i, c] of s.calls.entries()) {
          const a = args(s, c, i, keysOne);
          const [r] = await ds.query(`SELECT * FROM tollgate_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
            one, PERIOD, a.maxRequests, a.maxTokens, a.price, a.key, a.tool, a.grant, a.grantRef, randomUUID(), randomUUID(), a.cap,
          ]);
          singles.push({ outcome: r.outcome, requests: r.requests === null ? null : Number(r.requests), tokens: Number(r.tokens), balance: r.balance === null ? null : Number(r.balance) });
        }

        const batched: unknown[] = [];
        let from = 0;
        for (let k = 0; from < s.calls.length; k++) {
          const size = s.chunks[k % s.chunks.length];
          const chunk = s.calls.slice(from, from + size).map((c, j) => args(s, c, from + j, keysMany));
          const rows: { ord: number; outcome: string; requests: string | null; tokens: string; balance: string | null }[] = await ds.query(
            `SELECT * FROM tollgate_admit_many($1, $2, $3::bigint[], $4::bigint[], $5::bigint[], $6::uuid[], $7::text[], $8::bigint[], $9::text[], $10::uuid[], $11::uuid[], $12::bigint[])`,
            [
              many, PERIOD,
              chunk.map((a) => a.maxRequests), chunk.map((a) => a.maxTokens), chunk.map((a) => a.price), chunk.map((a) => a.key), chunk.map((a) => a.tool),
              chunk.map((a) => a.grant), chunk.map((a) => a.grantRef), chunk.map(() => randomUUID()), chunk.map(() => randomUUID()), chunk.map((a) => a.cap),
            ],
          );
          expect(rows.map((r) => r.ord)).toEqual(chunk.map((_, j) => j + 1));
          for (const r of rows) batched.push({ outcome: r.outcome, requests: r.requests === null ? null : Number(r.requests), tokens: Number(r.tokens), balance: r.balance === null ? null : Number(r.balance) });
          from += size;
        }

        expect(batched).toEqual(singles);
        expect(await stateOf(many, keysMany)).toEqual(await stateOf(one, keysOne));
      }),
      { numRuns: 60, seed: 20261127 },
    );
  }, 120_000);

  it('200 concurrent admissions of one tenant: 3 statements (1 alone, then 100 and 99), exactly the quota admitted, one ledger row per charge', async () => {
    const tenant = await freshTenant('burst', 0);
    const keyId = randomUUID();
    const period = new Date(`${PERIOD}T00:00:00Z`);
    const before = { batches: store.batcher.batches, items: store.batcher.items };
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, () =>
        store.admit({ tenantId: tenant, period, maxRequests: 50, maxTokens: 1_000_000, price: 2, keyId, tool: 'up__echo', grant: 1_000, grantReference: 'monthly:2026-11:test', keyCap: null }),
      ),
    );
    expect({ batches: store.batcher.batches - before.batches, items: store.batcher.items - before.items }).toEqual({ batches: 3, items: 200 });
    const admitted = outcomes.filter((o): o is Extract<AdmitOutcome, { outcome: 'admitted' }> => o.outcome === 'admitted');
    expect(admitted.length).toBe(50);
    expect(outcomes.filter((o) => o.outcome === 'quota_exceeded').length).toBe(150);
    // In submission order: the n-th admitted call saw the quota at n and the balance after n charges.
    expect(admitted.map((o) => o.requests)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(admitted.map((o) => o.balance)).toEqual(Array.from({ length: 50 }, (_, i) => 1_000 - 2 * (i + 1)));
    const state = await stateOf(tenant, [keyId]);
    expect(state.requests).toBe(50);
    expect(state.balance).toBe(900);
    expect(state.ledger.length).toBe(51);
    expect(state.ledger[0]).toMatchObject({ type: 'grant', amount: 1_000, after: 1_000 });
    expect(state.ledger.slice(1).map((l) => l.after)).toEqual(admitted.map((o) => o.balance));
    expect(state.spend).toEqual([100]);
  });

  it('a batch whose statement fails rejects each of its calls, writes nothing, and does not hold up another tenant', async () => {
    const ghost = uniqueTenant('ghost'); // no tenants row: the quota counter's foreign key refuses it
    const other = await freshTenant('other', 10);
    const period = new Date(`${PERIOD}T00:00:00Z`);
    const input = (tenantId: string) => ({ tenantId, period, maxRequests: 10, maxTokens: 1_000, price: 1, keyId: randomUUID(), tool: 'up__echo', grant: 0, grantReference: 'x', keyCap: null });
    const results = await Promise.allSettled([...Array.from({ length: 5 }, () => store.admit(input(ghost))), ...Array.from({ length: 5 }, () => store.admit(input(other)))]);
    const ghostResults = results.slice(0, 5);
    for (const r of ghostResults) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/foreign key/);
    }
    expect(results.slice(5).map((r) => (r.status === 'fulfilled' ? r.value.outcome : r.status))).toEqual(Array(5).fill('admitted'));
    expect(await ds.query(`SELECT 1 FROM quota_counters WHERE tenant_id = $1`, [ghost])).toEqual([]);
    expect((await stateOf(other, [])).balance).toBe(5);
  });
});
