import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { DataSource } from 'typeorm';
import { Admission, CallAdmission } from '../../src/plans/application/call-admission.service';
import { AdmissionStore, AdmitOutcome } from '../../src/plans/domain/billing.repositories';
import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { PostgresAdmissionStore } from '../../src/plans/infrastructure/typeorm-billing.repositories';
import { DATABASE_BUSY_CODE, isDatabaseUnavailable } from '../../src/shared/http/database-errors';
import { createTestApp, TestApp } from '../support/create-test-app';
import { uniqueTenant } from '../support/factories';

const PERIOD = '2026-11-01';
const KEYS = 3;

interface Call {
  price: number;
  key: number;
  cap: number | null;
  /** The plan's limits and grant as this call saw them (a plan change can land mid-batch). */
  quotaBump: number;
  tokensLimit: number;
  grant: number;
}

interface Scenario {
  quota: number;
  startRequests: number;
  startTokens: number;
  startBalance: number;
  /** The account's last monthly grant: none, last month, this month (PERIOD) or a later one. */
  lastGrant: string | null;
  calls: Call[];
  waves: number[];
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

  async function freshTenant(label: string, sc?: Scenario): Promise<string> {
    const tenant = uniqueTenant(label);
    await ds.query(`INSERT INTO tenants (id) VALUES ($1)`, [tenant]);
    if (sc && (sc.startRequests > 0 || sc.startTokens > 0)) {
      await ds.query(`INSERT INTO quota_counters (tenant_id, period, requests, tokens) VALUES ($1, $2, $3, $4)`, [tenant, PERIOD, sc.startRequests, sc.startTokens]);
    }
    if (sc && (sc.startBalance > 0 || sc.lastGrant !== null)) {
      await ds.query(`INSERT INTO credit_accounts (tenant_id, balance, last_grant_period) VALUES ($1, $2, $3)`, [tenant, sc.startBalance, sc.lastGrant]);
    }
    return tenant;
  }

  /** Everything an admission writes, with key ids replaced by their index so two tenants compare. */
  async function stateOf(tenant: string, keys: string[]) {
    const [quota] = await ds.query(`SELECT requests, tokens FROM quota_counters WHERE tenant_id = $1 AND period = $2`, [tenant, PERIOD]);
    const [account] = await ds.query(`SELECT balance, to_char(last_grant_period, 'YYYY-MM-DD') AS last FROM credit_accounts WHERE tenant_id = $1`, [tenant]);
    const ledger: { type: string; amount: string; balance_after: string; key_id: string | null; tool: string | null; reference: string | null }[] = await ds.query(
      `SELECT type, amount, balance_after, key_id, tool, reference FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`,
      [tenant],
    );
    const spend: { key_id: string; credits: string }[] = await ds.query(`SELECT key_id, credits FROM key_spend WHERE key_id = ANY($1::uuid[]) AND period = $2`, [keys, PERIOD]);
    return {
      quotaRow: quota ? { requests: Number(quota.requests), tokens: Number(quota.tokens) } : null,
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
      // tollgate_admit() leaves a 0 row behind a refused cap check, tollgate_admit_many() none: both read as 0.
      spend: keys.map((k) => Number(spend.find((s) => s.key_id === k)?.credits ?? 0)),
    };
  }

  const QUOTA = 10;
  const args = (c: Call, i: number, keys: string[]) => ({
    maxRequests: QUOTA + c.quotaBump,
    maxTokens: c.tokensLimit,
    price: c.price,
    key: keys[c.key],
    tool: `up__tool_${i % 3}`,
    grant: c.grant,
    grantRef: `monthly:2026-11:${c.grant}`,
    cap: c.cap,
  });

  it('a batch through PostgresAdmissionStore decides each call exactly as tollgate_admit() one by one (property, 60 random sequences)', async () => {
    const call = fc.record({
      price: fc.integer({ min: 0, max: 4 }),
      key: fc.integer({ min: 0, max: KEYS - 1 }),
      cap: fc.option(fc.integer({ min: 0, max: 8 }), { freq: 2 }),
      quotaBump: fc.constantFrom(0, 0, 0, 3),
      tokensLimit: fc.constantFrom(1_000_000, 1_000_000, 1_000_000, 2, 5),
      grant: fc.constantFrom(12, 12, 12, 0, 5),
    });
    const scenario = fc.record({
      quota: fc.constant(QUOTA),
      startRequests: fc.integer({ min: 0, max: 8 }),
      startTokens: fc.integer({ min: 0, max: 4 }),
      startBalance: fc.integer({ min: 0, max: 6 }),
      lastGrant: fc.constantFrom(null, '2026-10-01', PERIOD, '2026-12-01'),
      calls: fc.array(call, { minLength: 1, maxLength: 24 }),
      waves: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }),
    });
    const period = new Date(`${PERIOD}T00:00:00Z`);
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const one = await freshTenant('one', sc);
        const many = await freshTenant('many', sc);
        const keysOne = Array.from({ length: KEYS }, () => randomUUID());
        const keysMany = Array.from({ length: KEYS }, () => randomUUID());
        const norm = (o: { outcome: string; requests: unknown; tokens: unknown; balance: unknown }) => ({
          outcome: o.outcome,
          requests: o.requests === null ? null : Number(o.requests),
          tokens: Number(o.tokens),
          balance: o.balance === null ? null : Number(o.balance),
        });

        // Reference: each call alone, one after the other, through the function each call used before batching.
        const singles: unknown[] = [];
        for (const [i, c] of sc.calls.entries()) {
          const a = args(c, i, keysOne);
          const [r] = await ds.query(`SELECT * FROM tollgate_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
            one, PERIOD, a.maxRequests, a.maxTokens, a.price, a.key, a.tool, a.grant, a.grantRef, randomUUID(), randomUUID(), a.cap,
          ]);
          singles.push(norm(r));
        }

        // The store, in waves of concurrent calls: each wave goes as a batch of one, then a batch of the rest.
        const batched: unknown[] = [];
        const statementsBefore = store.batcher.batches;
        let expectedStatements = 0;
        for (let from = 0, w = 0; from < sc.calls.length; w++) {
          const size = sc.waves[w % sc.waves.length];
          const wave = sc.calls.slice(from, from + size).map((c, j) => args(c, from + j, keysMany));
          const outcomes = await Promise.all(
            wave.map((a) =>
              store.admit({ tenantId: many, period, maxRequests: a.maxRequests, maxTokens: a.maxTokens, price: a.price, keyId: a.key, tool: a.tool, grant: a.grant, grantReference: a.grantRef, keyCap: a.cap }),
            ),
          );
          for (const o of outcomes) {
            if (o.outcome === 'admitted') batched.push(norm({ ...o }));
            else if (o.outcome === 'quota_exceeded') batched.push(norm({ ...o, balance: null }));
            else if (o.outcome === 'key_cap_exceeded') batched.push({ outcome: o.outcome, keySpent: o.keySpent, balance: o.balance });
            else batched.push({ outcome: o.outcome, balance: o.balance });
          }
          expectedStatements += wave.length > 1 ? 2 : 1;
          from += size;
        }
        // The store reports fewer fields per refusal than the SQL row: compare what it reports.
        const reference = singles.map((r) => {
          const o = r as { outcome: string; requests: number | null; tokens: number; balance: number | null };
          if (o.outcome === 'key_cap_exceeded') return { outcome: o.outcome, keySpent: o.requests, balance: o.balance };
          if (o.outcome === 'insufficient_credits') return { outcome: o.outcome, balance: o.balance };
          if (o.outcome === 'quota_exceeded') return { ...o, requests: o.requests ?? 0, balance: null };
          return o;
        });
        expect(batched).toEqual(reference);
        expect(store.batcher.batches - statementsBefore).toBe(expectedStatements);
        expect(await stateOf(many, keysMany)).toEqual(await stateOf(one, keysOne));
      }),
      { numRuns: 60, seed: 20261127 },
    );
  }, 120_000);

  it('tollgate_admit_many refuses arrays of different lengths, and a charged call without a key, writing nothing', async () => {
    const tenant = await freshTenant('args');
    const call = (keys: (string | null)[], caps: (number | null)[]) =>
      ds.query(
        `SELECT * FROM tollgate_admit_many($1, $2, $3::bigint[], $4::bigint[], $5::bigint[], $6::uuid[], $7::text[], $8::bigint[], $9::text[], $10::uuid[], $11::uuid[], $12::bigint[])`,
        [tenant, PERIOD, [5, 5], [9, 9], [1, 1], keys, ['a', 'b'], [3, 3], ['g', 'g'], [randomUUID(), randomUUID()], [randomUUID(), randomUUID()], caps],
      );
    await expect(call([randomUUID(), randomUUID()], [null])).rejects.toMatchObject({ code: '22023' });
    await expect(call([randomUUID(), null], [null, null])).rejects.toMatchObject({ code: '22004' });
    expect(await stateOf(tenant, [])).toMatchObject({ quotaRow: null, balance: null, ledger: [] });
    expect((await call([randomUUID(), randomUUID()], [null, null])).map((r: { outcome: string }) => r.outcome)).toEqual(['admitted', 'admitted']);
  });

  it('200 concurrent admissions of one tenant: 3 statements (1 alone, then 100 and 99), exactly the quota admitted, one ledger row per charge', async () => {
    const tenant = await freshTenant('burst');
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
    expect(state.quotaRow).toEqual({ requests: 50, tokens: 0 });
    expect(state.balance).toBe(900);
    expect(state.ledger.length).toBe(51);
    expect(state.ledger[0]).toMatchObject({ type: 'grant', amount: 1_000, after: 1_000 });
    expect(state.ledger.slice(1).map((l) => l.after)).toEqual(admitted.map((o) => o.balance));
    expect(state.spend).toEqual([100]);
  });

  it('a batch whose statement fails rejects each of its calls, writes nothing, and does not hold up another tenant', async () => {
    const ghost = uniqueTenant('ghost'); // no tenants row: the quota counter's foreign key refuses it
    const other = await freshTenant('other');
    const period = new Date(`${PERIOD}T00:00:00Z`);
    const input = (tenantId: string) => ({ tenantId, period, maxRequests: 10, maxTokens: 1_000, price: 1, keyId: randomUUID(), tool: 'up__echo', grant: 10, grantReference: 'x', keyCap: null });
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

  it('a statement stuck behind a lock: after 2 s the calls waiting behind it are refused as unavailable (503), not left hanging', async () => {
    const tenant = await freshTenant('stuck');
    const period = new Date(`${PERIOD}T00:00:00Z`);
    await ds.query(`INSERT INTO quota_counters (tenant_id, period) VALUES ($1, $2)`, [tenant, PERIOD]);
    const holder = ds.createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    await holder.query(`SELECT 1 FROM quota_counters WHERE tenant_id = $1 AND period = $2 FOR UPDATE`, [tenant, PERIOD]);
    const input = { tenantId: tenant, period, maxRequests: 10, maxTokens: 1_000, price: 1, keyId: randomUUID(), tool: 'up__echo', grant: 10, grantReference: 'x', keyCap: null };
    try {
      const started = Date.now();
      const first = store.admit(input); // its statement waits for the lock
      const behind = await Promise.allSettled([store.admit(input), store.admit(input)]);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(PostgresAdmissionStore.MAX_WAIT_MS - 50);
      for (const r of behind) {
        expect(r.status).toBe('rejected');
        const reason = (r as PromiseRejectedResult).reason;
        expect(reason.code).toBe(DATABASE_BUSY_CODE);
        expect(isDatabaseUnavailable(reason)).toBe(true); // → 503 service_unavailable + Retry-After, JSON-RPC "retry shortly"
      }
      await holder.commitTransaction();
      await expect(first).resolves.toMatchObject({ outcome: 'admitted', requests: 1, balance: 9 });
      await expect(store.admit(input)).resolves.toMatchObject({ outcome: 'admitted', requests: 2 });
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
    }
  });

  it('batches, single admissions of the previous version (rolling upgrade), refunds and usage flushes on one tenant at once: no deadlock, every counter adds up', async () => {
    const tenant = await freshTenant('mixed');
    const keys = [randomUUID(), randomUUID(), randomUUID()];
    const period = new Date(`${PERIOD}T00:00:00Z`);
    const calls = t.app.get(CallAdmission);
    const usage = t.app.get(UsageBuffer);
    const GRANT = 100_000;
    const input = (i: number) => ({
      tenantId: tenant, period, maxRequests: 1_000_000, maxTokens: 1_000_000_000, price: 1 + (i % 3), keyId: keys[i % 3],
      tool: 'up__echo', grant: GRANT, grantReference: 'monthly:2026-11:mixed', keyCap: i % 2 ? 1_000_000 : null,
    });
    const charged: { price: number; key: string }[] = [];
    const batchedRound = async (from: number, n: number) => {
      const out = await Promise.all(Array.from({ length: n }, (_, i) => store.admit(input(from + i)).then((o) => ({ o, a: input(from + i) }))));
      for (const { o, a } of out) {
        expect(o.outcome).toBe('admitted');
        charged.push({ price: a.price, key: a.keyId });
      }
      return out.map(({ a }) => a);
    };
    const oldFunction = Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let j = 0; j < 10; j++) {
          const a = input(1_000 + w * 10 + j);
          const [r] = await ds.query(`SELECT * FROM tollgate_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
            tenant, PERIOD, a.maxRequests, a.maxTokens, a.price, a.keyId, a.tool, a.grant, a.grantReference, randomUUID(), randomUUID(), a.keyCap,
          ]);
          expect(r.outcome).toBe('admitted');
          charged.push({ price: a.price, key: a.keyId });
        }
      }),
    );
    const flushes = (async () => {
      for (let k = 0; k < 20; k++) {
        usage.record({ tenantId: tenant, keyId: keys[0], userId: 'u', tool: 'up__echo', at: new Date(), requests: 0, tokens: 7, credits: 0 });
        await usage.flush();
      }
    })();
    const [first] = await Promise.all([batchedRound(0, 300), oldFunction, flushes]);
    // Refund 40 of them (the upstream did not serve them) while 100 more are admitted.
    const refunded = first.slice(0, 40);
    const release = (a: ReturnType<typeof input>) => calls.release({ tenantId: a.tenantId, keyId: a.keyId, tool: a.tool, period, price: a.price } as Admission);
    await Promise.all([Promise.all(refunded.map(release)), batchedRound(300, 100)]);

    const state = await stateOf(tenant, keys);
    const charges = charged.reduce((sum, c) => sum + c.price, 0);
    const refunds = refunded.reduce((sum, a) => sum + a.price, 0);
    expect(state.quotaRow).toEqual({ requests: 300 + 60 + 100 - 40, tokens: 140 });
    expect(state.balance).toBe(GRANT - charges + refunds);
    expect(state.ledger.filter((l) => l.type === 'grant')).toHaveLength(1);
    expect(state.ledger.filter((l) => l.type === 'charge')).toHaveLength(460);
    expect(state.ledger.filter((l) => l.type === 'refund')).toHaveLength(40);
    // One chain: each row's balance_after is the previous one's plus its amount, whoever wrote it.
    let running = 0;
    for (const l of state.ledger) {
      running += l.amount;
      expect(l.after).toBe(running);
    }
    expect(running).toBe(state.balance);
    const spentBy = (key: string) =>
      charged.filter((c) => c.key === key).reduce((s, c) => s + c.price, 0) - refunded.filter((a) => a.keyId === key).reduce((s, a) => s + a.price, 0);
    expect(state.spend).toEqual(keys.map(spentBy));
  }, 60_000);
});
