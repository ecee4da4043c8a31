import fc from 'fast-check';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import { hitSequentially, type LimitWindow } from './multi-window-limiter';

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

describe('MemoryThrottlerStorage.hitAll with weights (a JSON-RPC batch: N hits in a window)', () => {
  afterEach(() => jest.useRealTimers());

  const windows = (key: string, hits: [number, number, number]): LimitWindow[] => [
    { name: 'minute', key: `${key}:minute`, ttlMs: 60_000, limit: 10, blockDurationMs: 60_000, hits: hits[0] },
    { name: 'tool_call', key: `${key}:tool_call`, ttlMs: 60_000, limit: 5, blockDurationMs: 60_000, hits: hits[1] },
    { name: 'hour', key: `${key}:hour`, ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000, hits: hits[2] },
  ];

  it('counts N per window; a request that does not fit a window is refused whole and not counted after it', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const s = new MemoryThrottlerStorage();
    expect(await s.hitAll(windows('k', [4, 3, 4]))).toEqual({
      blockedIndex: -1,
      records: [
        { totalHits: 4, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 },
        { totalHits: 3, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 },
        { totalHits: 4, timeToExpire: 3600, isBlocked: false, timeToBlockExpire: 0 },
      ],
    });
    // 3 more tool calls with 2 left in tool_call: refused (6 > 5), counted there and in minute, not per hour.
    expect(await s.hitAll(windows('k', [3, 3, 3]))).toEqual({
      blockedIndex: 1,
      records: [
        { totalHits: 7, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 },
        { totalHits: 6, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 60 },
      ],
    });
    expect(await s.increment('k:hour', 3_600_000, 100, 3_600_000, 'hour')).toMatchObject({ totalHits: 5, isBlocked: false });
    s.onApplicationShutdown();
  });

  it('exactly fills a window (totalHits = limit passes), and a weight above the limit never passes, even on a fresh window', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    const s = new MemoryThrottlerStorage();
    expect(await s.hitAll([{ ...windows('f', [1, 1, 1])[1], hits: 5 }])).toMatchObject({ blockedIndex: -1, records: [{ totalHits: 5, isBlocked: false }] });
    expect(await s.hitAll([{ ...windows('g', [1, 1, 1])[1], hits: 6 }])).toMatchObject({ blockedIndex: 0, records: [{ totalHits: 6, isBlocked: true, timeToBlockExpire: 60 }] });
    // The block over: a fresh window, and the same oversized request is refused again.
    jest.setSystemTime(2_000_000 + 60_001);
    expect(await s.hitAll([{ ...windows('g', [1, 1, 1])[1], hits: 6 }])).toMatchObject({ blockedIndex: 0, records: [{ totalHits: 6, isBlocked: true }] });
    s.onApplicationShutdown();
  });

  it('refuses hits that are not a positive integer', async () => {
    const s = new MemoryThrottlerStorage();
    for (const hits of [0, -1, 1.5, Number.NaN]) await expect(s.hitAll([{ ...windows('x', [1, 1, 1])[0], hits }])).rejects.toThrow(RangeError);
    s.onApplicationShutdown();
  });

  it('gives the same records as N increments per window in a row (hitSequentially), on any schedule', async () => {
    const step = fc.record({
      advanceMs: fc.integer({ min: 0, max: 40_000 }),
      hits: fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 })),
      toolCall: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
        let now = 5_000_000;
        jest.useFakeTimers({ now });
        const multi = new MemoryThrottlerStorage();
        const single = new MemoryThrottlerStorage();
        try {
          for (const { advanceMs, hits, toolCall } of steps) {
            now += advanceMs;
            jest.setSystemTime(now);
            const w = windows('p', hits).filter((x) => toolCall || x.name !== 'tool_call');
            const r = await multi.hitAll(w);
            expect(r).toEqual(await hitSequentially(single, w));
            // The first window always counts the request's hits (however the reference counts them).
            expect(r.records[0].totalHits).toBeGreaterThanOrEqual(hits[0]);
          }
        } finally {
          multi.onApplicationShutdown();
          single.onApplicationShutdown();
          jest.useRealTimers();
        }
      }),
      { numRuns: 200 },
    );
  });
});
