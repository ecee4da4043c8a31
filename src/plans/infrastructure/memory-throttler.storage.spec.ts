import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { hitSequentially } from './multi-window-limiter';

describe('MemoryThrottlerStorage', () => {
  afterEach(() => jest.useRealTimers());

  it('counts hits in a fixed window, blocks past the limit, and starts over after the block', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const s = new MemoryThrottlerStorage();
    const hit = () => s.increment('k', 60_000, 3, 60_000, 'minute');
    expect(await hit()).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    await hit();
    expect((await hit()).isBlocked).toBe(false);
    const over = await hit();
    expect(over).toMatchObject({ totalHits: 4, isBlocked: true, timeToBlockExpire: 60 });
    jest.setSystemTime(1_000_000 + 30_000);
    expect(await hit()).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
    jest.setSystemTime(1_000_000 + 60_001);
    expect(await hit()).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    s.onApplicationShutdown();
  });

  it('keeps keys and throttlers apart, and a window expires on its own', async () => {
    jest.useFakeTimers({ now: 5_000 });
    const s = new MemoryThrottlerStorage();
    await s.increment('a', 1_000, 10, 1_000, 'minute');
    expect((await s.increment('b', 1_000, 10, 1_000, 'minute')).totalHits).toBe(1);
    expect((await s.increment('a', 1_000, 10, 1_000, 'hour')).totalHits).toBe(1);
    jest.setSystemTime(6_001);
    expect((await s.increment('a', 1_000, 10, 1_000, 'minute')).totalHits).toBe(1);
    s.onApplicationShutdown();
  });
});

describe('MemoryThrottlerStorage.hitAll (several windows of one request)', () => {
  afterEach(() => jest.useRealTimers());

  const windows = (key: string) => [
    { name: 'minute', key: `${key}:minute`, ttlMs: 60_000, limit: 2, blockDurationMs: 60_000 },
    { name: 'tool_call', key: `${key}:tool_call`, ttlMs: 60_000, limit: 3, blockDurationMs: 60_000 },
    { name: 'hour', key: `${key}:hour`, ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000 },
  ];

  it('counts every window when none blocks, and stops at the first window that blocks', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const s = new MemoryThrottlerStorage();
    const w = windows('k');
    expect(await s.hitAll(w)).toEqual({
      blockedIndex: -1,
      records: [
        { totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 },
        { totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 },
        { totalHits: 1, timeToExpire: 3600, isBlocked: false, timeToBlockExpire: 0 },
      ],
    });
    expect((await s.hitAll(w)).blockedIndex).toBe(-1);
    // Third hit: the minute window (limit 2) blocks; tool_call and hour do not count it.
    const refused = await s.hitAll(w);
    expect(refused.blockedIndex).toBe(0);
    expect(refused.records).toEqual([{ totalHits: 3, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 60 }]);
    for (let i = 0; i < 5; i++) expect((await s.hitAll(w)).blockedIndex).toBe(0);
    expect(await s.increment('k:tool_call', 60_000, 3, 60_000, 'tool_call')).toMatchObject({ totalHits: 3, isBlocked: false });
    expect(await s.increment('k:hour', 3_600_000, 100, 3_600_000, 'hour')).toMatchObject({ totalHits: 3, isBlocked: false });
    s.onApplicationShutdown();
  });

  it('a later window that blocks reports its index, with the earlier windows counted', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    const s = new MemoryThrottlerStorage();
    const w = windows('j').slice(1); // tool_call (3), hour (100)
    for (let i = 0; i < 3; i++) expect((await s.hitAll(w)).blockedIndex).toBe(-1);
    const r = await s.hitAll([windows('j')[2], windows('j')[1]]); // hour first, then tool_call
    expect(r.blockedIndex).toBe(1);
    expect(r.records.map((x) => [x.totalHits, x.isBlocked])).toEqual([
      [4, false],
      [4, true],
    ]);
    s.onApplicationShutdown();
  });

  it('gives the same records as increment window after window (stopping at the first block)', async () => {
    jest.useFakeTimers({ now: 3_000_000 });
    const multi = new MemoryThrottlerStorage();
    const single = new MemoryThrottlerStorage();
    const w = windows('d');
    for (let i = 0; i < 12; i++) {
      jest.setSystemTime(3_000_000 + i * 7_000);
      const expected = await hitSequentially(single, w);
      expect(await multi.hitAll(w)).toEqual(expected);
    }
    expect(await multi.hitAll([])).toEqual({ blockedIndex: -1, records: [] });
    multi.onApplicationShutdown();
    single.onApplicationShutdown();
  });
});
