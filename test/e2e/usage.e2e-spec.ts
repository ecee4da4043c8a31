import { Clock } from '../../src/shared/domain/clock';
import { estimateTokens, forecastExhaustion } from '../../src/usage/domain/usage';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, writePlansFile } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/** A clock the test moves by hand (every Clock consumer in the app sees it). */
class FakeClock extends Clock {
  private at: number;
  constructor(iso: string) {
    super();
    this.at = Date.parse(iso);
  }
  now(): Date {
    return new Date(this.at);
  }
  set(iso: string): void {
    this.at = Date.parse(iso);
  }
}

const LIMIT = 100;
const METER_PLAN = {
  id: 'meter',
  name: 'Meter',
  rate_limits: { per_minute: 1_000, per_hour: 10_000 },
  quotas: { requests_per_month: LIMIT, tokens_per_month: 1_000_000_000 },
  max_keys: 10,
  included_credits: 1_000,
};

const H10 = '2030-03-01T10:00:00.000Z';
const H11 = '2030-03-01T11:00:00.000Z';

interface Bucket {
  start: string;
  requests: number;
  tokens: number;
  credits: number;
}

/**
 * U1–U4: a scripted sequence of calls over two hours and two tools, with a
 * fixed clock (10:15, then 11:20 UTC on 1 March 2030); buckets by hour and
 * day, filters by tool and key, developers' own view, per-key totals, and the
 * month's forecast. Token counts are recomputed here from what went over the wire.
 */
describe('Usage metering and reports (e2e, fixed clock)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  const clock = new FakeClock('2030-03-01T10:15:00.000Z');
  let tenant: string;
  let admin: string;
  let dev: string;
  let keyA: { id: string; token: string };
  let keyD: { id: string; token: string };
  /** What the test expects, per key, tool and hour. */
  const expected: { key: string; tool: string; hour: string; tokens: number; credits: number }[] = [];
  const PRICES: Record<string, number> = { fake__echo: 1, fake__slow: 2 };

  beforeAll(async () => {
    const plansFile = writePlansFile([METER_PLAN]);
    fake = await new FakeUpstream().start();
    t = await createTestApp({ PLANS_FILE: plansFile }, [{ provide: Clock, useValue: clock }]);
    tenant = uniqueTenant('usage');
    admin = managementToken({ tenantId: tenant });
    dev = managementToken({ tenantId: tenant, sub: 'dev-1', roles: ['developer'], scope: { mcp_tool_ids: ['*'] } });
    await setPlan(t, tenant, 'meter');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    const price = await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__slow', token: admin, body: { price: 2 } });
    expect(price.status).toBe(200);
    keyA = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    keyD = await createKey(t, dev, { permission_scope: { mcp_tool_ids: ['fake__*'] } });

    // Hour 10 (10:15): key A 3× echo + 2× slow; the developer's key 1× echo.
    for (let i = 0; i < 3; i++) await call(keyA, 'fake__echo', { message: `a-${i}` }, H10);
    for (let i = 0; i < 2; i++) await call(keyA, 'fake__slow', { ms: i }, H10);
    await call(keyD, 'fake__echo', { message: 'dev hello, a longer message' }, H10);
    // Hour 11 (11:20): key A 1× echo + 1× slow; the developer's key 1× slow.
    clock.set('2030-03-01T11:20:00.000Z');
    await call(keyA, 'fake__echo', { message: 'later' }, H11);
    await call(keyA, 'fake__slow', { ms: 3 }, H11);
    await call(keyD, 'fake__slow', { ms: 4 }, H11);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  /** One REST call; its tokens are recomputed from the request arguments and the result the agent got. */
  async function call(key: { id: string; token: string }, tool: string, args: Record<string, unknown>, hour: string) {
    const res = await t.request({ method: 'POST', url: `/api/v1/mcp/tools/${tool}/call`, headers: { 'x-api-key': key.token }, body: { arguments: args } });
    expect(res.status).toBe(200);
    const { _meta, ...result } = res.body;
    expect(_meta['io.tollgate/budget']).toBeDefined();
    const tokens = estimateTokens(Buffer.byteLength(JSON.stringify(args)), Buffer.byteLength(JSON.stringify(result)));
    expected.push({ key: key.id, tool, hour, tokens, credits: PRICES[tool] });
  }

  function sum(filter: (e: (typeof expected)[number]) => boolean) {
    const rows = expected.filter(filter);
    return { requests: rows.length, tokens: rows.reduce((n, e) => n + e.tokens, 0), credits: rows.reduce((n, e) => n + e.credits, 0) };
  }

  function hourly(filter: (e: (typeof expected)[number]) => boolean = () => true): Bucket[] {
    return [H10, H11]
      .map((hour) => ({ start: hour, ...sum((e) => e.hour === hour && filter(e)) }))
      .filter((b) => b.requests > 0);
  }

  async function usage(query: string, token = admin) {
    const res = await t.request({ method: 'GET', url: `/api/v1/usage?${query}`, token });
    return res;
  }

  const DAY_RANGE = 'from=2030-03-01T00:00:00Z&to=2030-03-02T00:00:00Z';

  it('the script made 9 calls: 6 in hour 10, 3 in hour 11, each with a positive token estimate', () => {
    expect(expected.length).toBe(9);
    expect(expected.filter((e) => e.hour === H10).length).toBe(6);
    expect(expected.every((e) => e.tokens > 0)).toBe(true);
  });

  it('granularity=hour: two buckets with the exact requests, tokens and credits of each hour', async () => {
    const res = await usage(`granularity=hour&${DAY_RANGE}`);
    expect(res.status).toBe(200);
    expect(res.body.granularity).toBe('hour');
    expect(res.body.buckets).toEqual(hourly());
    expect(res.body.buckets.map((b: Bucket) => b.requests)).toEqual([6, 3]);
    expect(res.body.buckets.map((b: Bucket) => b.credits)).toEqual([3 + 2 * 2 + 1, 1 + 2 + 2]);
  });

  it('tool filter: only that tool counts', async () => {
    const slow = await usage(`granularity=hour&${DAY_RANGE}&tool=fake__slow`);
    expect(slow.status).toBe(200);
    expect(slow.body.buckets).toEqual(hourly((e) => e.tool === 'fake__slow'));
    expect(slow.body.buckets.map((b: Bucket) => b.requests)).toEqual([2, 2]);
    const echo = await usage(`granularity=hour&${DAY_RANGE}&tool=fake__echo`);
    expect(echo.body.buckets).toEqual(hourly((e) => e.tool === 'fake__echo'));
    expect(echo.body.buckets.map((b: Bucket) => b.requests)).toEqual([4, 1]);
    const none = await usage(`granularity=hour&${DAY_RANGE}&tool=fake__image`);
    expect(none.body.buckets).toEqual([]);
  });

  it('key_id filter: only that key counts', async () => {
    const a = await usage(`granularity=hour&${DAY_RANGE}&key_id=${keyA.id}`);
    expect(a.status).toBe(200);
    expect(a.body.buckets).toEqual(hourly((e) => e.key === keyA.id));
    expect(a.body.buckets.map((b: Bucket) => b.requests)).toEqual([5, 2]);
    const both = await usage(`granularity=hour&${DAY_RANGE}&key_id=${keyD.id}&tool=fake__slow`);
    expect(both.body.buckets).toEqual([{ start: H11, ...sum((e) => e.key === keyD.id && e.tool === 'fake__slow') }]);
  });

  it('granularity=day sums both hours into one bucket; month too; the range bounds are respected', async () => {
    const day = await usage(`granularity=day&${DAY_RANGE}`);
    expect(day.status).toBe(200);
    expect(day.body.granularity).toBe('day');
    expect(day.body.buckets).toEqual([{ start: '2030-03-01T00:00:00.000Z', ...sum(() => true) }]);
    const month = await usage('granularity=month&from=2030-03-01T00:00:00Z&to=2030-04-01T00:00:00Z');
    expect(month.body.buckets).toEqual([{ start: '2030-03-01T00:00:00.000Z', ...sum(() => true) }]);
    // Defaults: from the start of the month to now (the fixed clock), by day.
    const defaults = await usage('');
    expect(defaults.body.granularity).toBe('day');
    expect(defaults.body.buckets).toEqual(day.body.buckets);
    // from is inclusive, to exclusive: [11:00, 12:00) holds hour 11 only; [10:00, 11:00) hour 10 only.
    const only11 = await usage('granularity=hour&from=2030-03-01T11:00:00Z&to=2030-03-01T12:00:00Z');
    expect(only11.body.buckets).toEqual(hourly((e) => e.hour === H11));
    const only10 = await usage('granularity=hour&from=2030-03-01T10:00:00Z&to=2030-03-01T11:00:00Z');
    expect(only10.body.buckets).toEqual(hourly((e) => e.hour === H10));
    const before = await usage('granularity=hour&from=2030-02-01T00:00:00Z&to=2030-03-01T10:00:00Z');
    expect(before.body.buckets).toEqual([]);
  });

  it('bad queries are 422: unknown granularity, to before from, malformed key_id', async () => {
    expect((await usage('granularity=week')).status).toBe(422);
    expect((await usage('from=2030-03-02T00:00:00Z&to=2030-03-01T00:00:00Z')).status).toBe(422);
    expect((await usage('key_id=not-a-uuid')).status).toBe(422);
  });

  it('a developer sees only their own keys; another key of the tenant is not found for them', async () => {
    const mine = await usage(`granularity=hour&${DAY_RANGE}`, dev);
    expect(mine.status).toBe(200);
    expect(mine.body.buckets).toEqual(hourly((e) => e.key === keyD.id));
    expect(mine.body.buckets.map((b: Bucket) => b.requests)).toEqual([1, 1]);
    expect((await usage(`granularity=hour&${DAY_RANGE}&key_id=${keyA.id}`, dev)).status).toBe(404);
    expect((await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyA.id}/usage`, token: dev })).status).toBe(404);
    // Another tenant's admin sees none of it.
    const stranger = managementToken({ tenantId: uniqueTenant('usage-other') });
    expect((await usage(`granularity=hour&${DAY_RANGE}`, stranger)).body.buckets).toEqual([]);
    expect((await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyA.id}/usage`, token: stranger })).status).toBe(404);
    // Auditors are not given usage.
    const auditor = managementToken({ tenantId: tenant, roles: ['auditor'] });
    expect((await usage('', auditor)).status).toBe(403);
  });

  it('GET /api/v1/api-keys/:id/usage matches the buckets, with last_used_at from the clock', async () => {
    for (const [key, token] of [
      [keyA, admin],
      [keyD, dev],
    ] as const) {
      const res = await t.request({ method: 'GET', url: `/api/v1/api-keys/${key.id}/usage`, token });
      expect(res.status).toBe(200);
      const total = sum((e) => e.key === key.id);
      expect(res.body).toMatchObject({ requests_count: total.requests, tokens_used: total.tokens, credits_used: total.credits });
      expect(res.body.last_used_at).toBe('2030-03-01T11:20:00.000Z');
      const buckets = (await usage(`granularity=month&from=2030-03-01T00:00:00Z&to=2030-04-01T00:00:00Z&key_id=${key.id}`)).body.buckets;
      expect(buckets).toEqual([{ start: '2030-03-01T00:00:00.000Z', requests: total.requests, tokens: total.tokens, credits: total.credits }]);
    }
    // The credit ledger agrees with the metered credits.
    const ledger = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: admin });
    const charged = ledger.body.data.filter((r: { type: string }) => r.type === 'charge').reduce((n: number, r: { amount: number }) => n - r.amount, 0);
    expect(charged).toBe(sum(() => true).credits);
  });

  it('forecast with the fixed clock: 9 of 100 used in 11 h 20 min → runs out at now + 91 × elapsed / 9', async () => {
    const res = await usage(`granularity=hour&${DAY_RANGE}`);
    const now = Date.parse('2030-03-01T11:20:00.000Z');
    const monthStart = Date.parse('2030-03-01T00:00:00.000Z');
    const elapsed = now - monthStart;
    const runsOut = now + ((LIMIT - 9) * elapsed) / 9;
    expect(res.body.forecast.limit).toBe(LIMIT);
    expect(res.body.forecast.used).toBe(9);
    expect(Math.abs(Date.parse(res.body.forecast.runs_out_at) - runsOut)).toBeLessThanOrEqual(1);
    expect(res.body.forecast.runs_out_at.slice(0, 16)).toBe('2030-03-06T05:55');
    expect(res.body.forecast.rate_per_hour).toBeCloseTo((9 / elapsed) * 3_600_000, 2);
    expect(res.body.forecast).toEqual(
      forecastExhaustion(9, LIMIT, new Date(monthStart), new Date('2030-04-01T00:00:00.000Z'), new Date(now)),
    );
    // The forecast is the tenant's, whatever the filter (a developer plans against the same quota).
    expect((await usage('granularity=hour', dev)).body.forecast).toEqual(res.body.forecast);
  });

  it('later in the month at the same total the rate is too slow to run out before the reset: runs_out_at null', async () => {
    clock.set('2030-03-20T00:00:00.000Z');
    try {
      const res = await usage('granularity=day');
      expect(res.status).toBe(200);
      expect(res.body.forecast).toMatchObject({ limit: LIMIT, used: 9, runs_out_at: null });
      expect(res.body.buckets).toEqual([{ start: '2030-03-01T00:00:00.000Z', ...sum(() => true) }]);
    } finally {
      clock.set('2030-03-01T11:20:00.000Z');
    }
  });

  it("the month's quota counter equals the metered requests, and the budget in _meta counts down from the plan", async () => {
    const rows = await t.db.query(`SELECT period::text AS period, requests::int AS requests FROM quota_counters WHERE tenant_id = $1`, [tenant]);
    expect(rows).toEqual([{ period: '2030-03-01', requests: 9 }]);
    const res = await t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': keyA.token }, body: { arguments: { message: 'x' } } });
    const { _meta, ...result } = res.body;
    expect(_meta['io.tollgate/budget']).toMatchObject({ plan: 'meter', requests_remaining: LIMIT - 10, reset_at: '2030-04-01T00:00:00.000Z' });
    expected.push({ key: keyA.id, tool: 'fake__echo', hour: H11, tokens: estimateTokens(Buffer.byteLength('{"message":"x"}'), Buffer.byteLength(JSON.stringify(result))), credits: 1 });
    const hour = await usage(`granularity=hour&${DAY_RANGE}`);
    expect(hour.body.buckets).toEqual(hourly());
  });
});
