import { randomBytes } from 'node:crypto';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import Redis from 'ioredis';
import { hitSequentially, LimitWindow, MultiWindowResult } from '../../src/plans/infrastructure/multi-window-limiter';
import { RedisThrottlerStorage } from '../../src/plans/infrastructure/redis-throttler.storage';
import { ThrowawayRedis } from '../support/throwaway-redis';

/**
 * The hand-written multi-window Lua script (RedisThrottlerStorage.hitAll)
 * against the library it mirrors: on the machine's Redis (REDIS_URL), every
 * step runs once through hitAll on keys under prefix A and once through
 * @nest-lab/throttler-storage-redis's `increment`, window after window,
 * stopping at the first block, under prefix B. Records and the keys left in
 * Redis must be the same. Keys live under a random prefix, deleted afterwards.
 * Needs REDIS_URL, and the redis-server binary for the script-cache test.
 */
const REDIS_URL = process.env.REDIS_URL;
const describeWithRedis = REDIS_URL ? describe : describe.skip;
if (!REDIS_URL) {
  process.stdout.write('redis-limit-script.e2e-spec: skipped, REDIS_URL is unset (needs a real Redis)\n');
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describeWithRedis('rate-limit Lua script: one round trip, same semantics as the library window after window', () => {
  const run = `tg:test:mw:${randomBytes(6).toString('hex')}`;
  let redis: Redis;
  let ours: RedisThrottlerStorage;
  let library: ThrottlerStorageRedisService;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL!);
    ours = new RedisThrottlerStorage(redis);
    library = new ThrottlerStorageRedisService(redis);
  });

  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${run}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
  });

  /** The same windows under two prefixes: one for the script, one for the library. */
  function pair(test: string, specs: Array<Omit<LimitWindow, 'key'>>): { a: LimitWindow[]; b: LimitWindow[] } {
    return {
      a: specs.map((s) => ({ ...s, key: `${run}:${test}:a:${s.name}` })),
      b: specs.map((s) => ({ ...s, key: `${run}:${test}:b:${s.name}` })),
    };
  }

  const redisKeys = (w: LimitWindow) => [`{${w.key}:${w.name}}:hits`, `{${w.key}:${w.name}}:blocked`];

  /** What Redis holds for the windows: value and whether a TTL is set, per key. */
  async function state(windows: LimitWindow[]): Promise<Array<[string | null, boolean]>> {
    const out: Array<[string | null, boolean]> = [];
    for (const w of windows) {
      for (const k of redisKeys(w)) out.push([await redis.get(k), (await redis.pttl(k)) > 0]);
    }
    return out;
  }

  async function step(p: { a: LimitWindow[]; b: LimitWindow[] }, only?: number[]): Promise<MultiWindowResult> {
    const pick = (ws: LimitWindow[]) => (only ? only.map((i) => ws[i]) : ws);
    const [mine, theirs] = await Promise.all([ours.hitAll(pick(p.a)), hitSequentially(library, pick(p.b))]);
    expect(mine).toEqual(theirs);
    expect(await state(p.a)).toEqual(await state(p.b));
    return mine;
  }

  it('counts, blocks and stops at the first blocking window like the library, call after call', async () => {
    const p = pair('count', [
      { name: 'minute', ttlMs: 60_000, limit: 4, blockDurationMs: 60_000 },
      { name: 'tool_call', ttlMs: 60_000, limit: 2, blockDurationMs: 60_000 },
      { name: 'hour', ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000 },
    ]);
    const outcomes: number[] = [];
    // Tool calls (all three windows) and listings (minute and hour only), interleaved.
    const schedule = [undefined, [0, 2], undefined, undefined, [0, 2], [0, 2], undefined, [0, 2]];
    for (const only of schedule) outcomes.push((await step(p, only)).blockedIndex);
    // tool_call refuses the 3rd tool call (index 1 of 3); minute refuses from the 5th request on.
    expect(outcomes).toEqual([-1, -1, -1, 1, 0, 0, 0, 0]);
    const hits = async (w: LimitWindow) => Number(await redis.get(redisKeys(w)[0]));
    expect(await hits(p.a[0])).toBe(8);
    expect(await hits(p.a[1])).toBe(3);
    expect(await hits(p.a[2])).toBe(3); // only the first three: the requests refused per tool call or per minute were not counted per hour
  });

  it('restarts windows and ends blocks on the same schedule as the library', async () => {
    // Each wait is measured from the step that set the expiry (its start or its end, whichever is
    // the safe side), never from a fixed t0: a slow host (CI under load) stretches the steps
    // themselves, and a schedule fixed in advance then lands on the wrong side of an expiry.
    // Every step is ≥ 150 ms away from every expiry, so both sides see the same state.
    const p = pair('expiry', [
      { name: 'short', ttlMs: 300, limit: 2, blockDurationMs: 2_000 },
      { name: 'long', ttlMs: 60_000, limit: 100, blockDurationMs: 60_000 },
    ]);
    const until = async (t: number) => sleep(Math.max(0, t - Date.now()));
    expect((await step(p)).blockedIndex).toBe(-1);
    const windowSetBy = Date.now(); // the short window was opened by the step that just ended
    expect((await step(p)).blockedIndex).toBe(-1);
    const blockFrom = Date.now(); // the block starts during the next step, not before
    const blocked = await step(p);
    expect(blocked.blockedIndex).toBe(0);
    expect(blocked.records).toEqual([{ totalHits: 3, timeToExpire: 1, isBlocked: true, timeToBlockExpire: 2 }]);
    const blockSetBy = Date.now();
    // The short window has expired (≥ 150 ms ago), its block has not (≥ 1.5 s left): a new window, still blocked.
    await until(windowSetBy + 450);
    expect(Date.now()).toBeLessThan(blockFrom + 2_000 - 150);
    const stillBlocked = await step(p);
    expect(stillBlocked.blockedIndex).toBe(0);
    expect(stillBlocked.records).toEqual([{ totalHits: 1, timeToExpire: 1, isBlocked: true, timeToBlockExpire: expect.any(Number) }]);
    await until(Math.max(blockSetBy + 2_150, Date.now() + 450)); // block over, the new short window over: counted again, in both windows
    const again = await step(p);
    expect(again.blockedIndex).toBe(-1);
    expect(again.records.map((r) => r.totalHits)).toEqual([1, 3]);
  });

  it('drops a block key that has no TTL and restarts the window, as the library does', async () => {
    const p = pair('nottl', [
      { name: 'minute', ttlMs: 60_000, limit: 5, blockDurationMs: 60_000 },
      { name: 'hour', ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000 },
    ]);
    await step(p);
    await step(p);
    await redis.set(redisKeys(p.a[0])[1], '1');
    await redis.set(redisKeys(p.b[0])[1], '1');
    const r = await step(p);
    expect(r.blockedIndex).toBe(-1);
    expect(r.records.map((x) => x.totalHits)).toEqual([1, 3]);
    expect(await redis.exists(redisKeys(p.a[0])[1])).toBe(0);
  });

  it('costs one Redis command per call', async () => {
    const p = pair('rtt', [
      { name: 'minute', ttlMs: 60_000, limit: 10, blockDurationMs: 60_000 },
      { name: 'tool_call', ttlMs: 60_000, limit: 10, blockDurationMs: 60_000 },
      { name: 'hour', ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000 },
    ]);
    const spy = jest.spyOn(redis, 'sendCommand');
    try {
      for (let i = 1; i <= 3; i++) {
        spy.mockClear();
        const r = await ours.hitAll(p.a);
        expect(r.records.map((x) => x.totalHits)).toEqual([i, i, i]);
        expect(spy.mock.calls.map(([c]) => c.name)).toEqual([i === 1 ? expect.stringMatching(/^eval(sha)?$/) : 'evalsha']);
      }
      expect(await ours.hitAll([])).toEqual({ blockedIndex: -1, records: [] });
    } finally {
      spy.mockRestore();
    }
  });

  it('survives a flushed script cache (on a throwaway redis-server, not to flush the shared one)', async () => {
    const own = await new ThrowawayRedis().start();
    const client = new Redis(own.url);
    try {
      const storage = new RedisThrottlerStorage(client);
      const w: LimitWindow[] = [{ name: 'minute', key: 'k', ttlMs: 60_000, limit: 10, blockDurationMs: 60_000 }];
      expect((await storage.hitAll(w)).records[0].totalHits).toBe(1);
      expect((await storage.hitAll(w)).records[0].totalHits).toBe(2);
      // SCRIPT FLUSH drops the script under a live connection: the next call gets NOSCRIPT, reloads it, counts once.
      await client.script('FLUSH');
      expect((await storage.hitAll(w)).records[0].totalHits).toBe(3);
      expect(await client.get('{k:minute}:hits')).toBe('3');
    } finally {
      client.disconnect();
      await own.stop();
    }
  });
});
