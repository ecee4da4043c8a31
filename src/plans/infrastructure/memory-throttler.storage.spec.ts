import { MemoryThrottlerStorage } from './memory-throttler.storage';

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
