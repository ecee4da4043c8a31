import { Logger } from '@nestjs/common';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';
import type { LimitWindow, MultiWindowResult } from './multi-window-limiter';
import { REDIS_LIMIT_TIMEOUT_MS, REDIS_PROBE_INTERVAL_MS, ResilientThrottlerStorage } from './resilient-throttler.storage';

const WINDOWS: LimitWindow[] = [
  { name: 'minute', key: 'tg:rl:minute:key:k1', ttlMs: 60_000, limit: 1, blockDurationMs: 60_000 },
  { name: 'hour', key: 'tg:rl:hour:key:k1', ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000 },
];

const record = (totalHits: number): ThrottlerStorageRecord => ({ totalHits, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });

/** A stand-in for the Redis storage whose answers a test scripts. */
class FakeShared {
  mode: 'ok' | 'error' | 'hang' = 'ok';
  hitAllCalls = 0;
  incrementCalls = 0;

  async increment(): Promise<ThrottlerStorageRecord> {
    this.incrementCalls++;
    return this.answer(record(42));
  }

  async hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
    this.hitAllCalls++;
    return this.answer({ blockedIndex: -1, records: windows.map(() => record(42)) });
  }

  private answer<T>(value: T): Promise<T> {
    if (this.mode === 'error') return Promise.reject(new Error('Connection is closed.'));
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    return Promise.resolve(value);
  }
}

describe('ResilientThrottlerStorage.hitAll (degraded mode for the multi-window call)', () => {
  let now: number;
  beforeEach(() => {
    now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('makes one call to the shared storage for all the windows while Redis answers', async () => {
    const shared = new FakeShared();
    const s = new ResilientThrottlerStorage(shared as never);
    const r = await s.hitAll(WINDOWS);
    expect(r.records.map((x) => x.totalHits)).toEqual([42, 42]);
    expect(shared.hitAllCalls).toBe(1);
    expect(shared.incrementCalls).toBe(0);
    expect(s.degraded).toBe(false);
    s.onApplicationShutdown();
  });

  it('falls back to memory on an error, probes Redis once per interval, and shares again when it answers', async () => {
    const shared = new FakeShared();
    const s = new ResilientThrottlerStorage(shared as never);
    shared.mode = 'error';
    // Local counters: limit 1 per minute, so the second request is blocked by the minute window.
    expect(await s.hitAll(WINDOWS)).toMatchObject({ blockedIndex: -1, records: [{ totalHits: 1 }, { totalHits: 1 }] });
    expect(s.degraded).toBe(true);
    expect(shared.hitAllCalls).toBe(1);
    now += REDIS_PROBE_INTERVAL_MS - 1;
    const blocked = await s.hitAll(WINDOWS);
    expect(blocked.blockedIndex).toBe(0);
    expect(blocked.records).toHaveLength(1);
    expect(shared.hitAllCalls).toBe(1); // within the probe interval: memory only
    // The single-window calls share the same degraded state.
    expect((await s.increment('tg:rl:anon:1.2.3.4', 60_000, 10, 60_000, 'anonymous')).totalHits).toBe(1);
    expect(shared.incrementCalls).toBe(0);

    now += 2;
    shared.mode = 'ok';
    expect((await s.hitAll(WINDOWS)).records[0].totalHits).toBe(42);
    expect(shared.hitAllCalls).toBe(2);
    expect(s.degraded).toBe(false);
    s.onApplicationShutdown();
  });

  it(`does not wait more than ${REDIS_LIMIT_TIMEOUT_MS} ms for a Redis that does not answer`, async () => {
    const shared = new FakeShared();
    const s = new ResilientThrottlerStorage(shared as never);
    shared.mode = 'hang';
    const started = process.hrtime.bigint();
    const r = await s.hitAll(WINDOWS);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(REDIS_LIMIT_TIMEOUT_MS - 5);
    // Upper bound with room for a loaded host (timers fire late when the CPU is taken), far below a hang.
    expect(ms).toBeLessThan(REDIS_LIMIT_TIMEOUT_MS + 1_500);
    expect(r).toMatchObject({ blockedIndex: -1, records: [{ totalHits: 1 }, { totalHits: 1 }] });
    expect(s.degraded).toBe(true);
    s.onApplicationShutdown();
  });
});
