import { KeyedBatcher } from './keyed-batcher';

/** A run function whose batches the test releases by hand. */
function controlled() {
  const calls: { key: string; items: number[]; release: (out?: string[]) => void; fail: (e: Error) => void }[] = [];
  const run = (key: string, items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ key, items, release: (out) => resolve(out ?? items.map((i) => `${key}:${i}`)), fail: reject });
    });
  return { calls, run };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('KeyedBatcher', () => {
  it('sends a lone item at once, in a batch of its own', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run);
    const p = b.submit('t1', 1);
    expect(calls.map((c) => c.items)).toEqual([[1]]); // synchronously: no timer, no tick
    calls[0].release();
    await expect(p).resolves.toBe('t1:1');
    expect(b.busyKeys).toBe(0);
  });

  it('queues what arrives while a batch of the same key is in flight and sends it as the next batch, in order', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run);
    const first = b.submit('t1', 1);
    const rest = [2, 3, 4].map((i) => b.submit('t1', i));
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1]]); // one batch in flight per key
    calls[0].release();
    await first;
    await tick();
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
    calls[1].release();
    await expect(Promise.all(rest)).resolves.toEqual(['t1:2', 't1:3', 't1:4']);
    expect({ batches: b.batches, items: b.items }).toEqual({ batches: 2, items: 4 });
  });

  it('runs batches of different keys in parallel', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run);
    const a = b.submit('a', 1);
    const c = b.submit('b', 1);
    expect(calls.map((x) => x.key)).toEqual(['a', 'b']);
    calls[1].release();
    await expect(c).resolves.toBe('b:1');
    calls[0].release();
    await expect(a).resolves.toBe('a:1');
  });

  it('splits a long queue into batches of at most maxBatch', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run, { maxBatch: 3 });
    const all = Array.from({ length: 8 }, (_, i) => b.submit('k', i));
    calls[0].release();
    await tick();
    calls[1].release();
    await tick();
    calls[2].release();
    await tick();
    calls[3]?.release();
    await Promise.all(all);
    expect(calls.map((c) => c.items)).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
  });

  it('rejects every item of a failed batch with its error, and still runs the next batch', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run);
    const first = b.submit('k', 1);
    const second = [b.submit('k', 2), b.submit('k', 3)];
    calls[0].release();
    await first;
    await tick();
    expect(calls[1].items).toEqual([2, 3]);
    const third = b.submit('k', 4); // queued behind the batch in flight
    const settled = Promise.allSettled(second);
    calls[1].fail(new Error('connection terminated'));
    const outcomes = await settled;
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason).toEqual(new Error('connection terminated'));
    await tick();
    expect(calls[2].items).toEqual([4]);
    calls[2].release();
    await expect(third).resolves.toBe('k:4');
  });

  it('rejects the batch when run returns a wrong number of results', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run);
    const p = b.submit('k', 1);
    calls[0].release([]);
    await expect(p).rejects.toThrow('batch of 1 returned 0 results');
  });

  it('refuses options that make no sense', () => {
    expect(() => new KeyedBatcher(async () => [], { maxBatch: 0 })).toThrow(RangeError);
    expect(() => new KeyedBatcher(async () => [], { maxWaitMs: 0 })).toThrow(RangeError);
    expect(() => new KeyedBatcher(async () => [], { maxQueue: -1 })).toThrow(RangeError);
  });

  it('a run that throws synchronously rejects its batch; the key is free again', async () => {
    let calls = 0;
    const b = new KeyedBatcher<number, number>((_k, items) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return Promise.resolve(items);
    });
    await expect(b.submit('k', 1)).rejects.toThrow('boom');
    expect(b.busyKeys).toBe(0);
    await expect(b.submit('k', 2)).resolves.toBe(2);
  });

  it('refuses queue_full beyond maxQueue waiting items of a key, other keys unaffected', async () => {
    const { calls, run } = controlled();
    const b = new KeyedBatcher(run, { maxQueue: 2, refuse: (reason) => new Error(reason) });
    const first = b.submit('k', 1);
    const waiting = [b.submit('k', 2), b.submit('k', 3)];
    await expect(b.submit('k', 4)).rejects.toThrow('queue_full');
    const other = b.submit('other', 1);
    calls[1].release();
    await expect(other).resolves.toBe('other:1');
    calls[0].release();
    await first;
    await tick();
    calls[2].release();
    await expect(Promise.all(waiting)).resolves.toEqual(['k:2', 'k:3']);
  });

  it('refuses stalled: once a batch is in flight for maxWaitMs, who waits behind it and who comes until it settles', async () => {
    jest.useFakeTimers();
    try {
      const { calls, run } = controlled();
      const b = new KeyedBatcher(run, { maxWaitMs: 2_000, refuse: (reason) => new Error(reason) });
      const first = b.submit('k', 1);
      const behind = b.submit('k', 2);
      const settledBehind = Promise.allSettled([behind]);
      jest.advanceTimersByTime(1_999);
      expect(calls.length).toBe(1);
      jest.advanceTimersByTime(1);
      expect((await settledBehind)[0]).toEqual({ status: 'rejected', reason: new Error('stalled') });
      await expect(b.submit('k', 3)).rejects.toThrow('stalled');
      calls[0].release(); // the late statement answers after all: its own call still gets its result
      await expect(first).resolves.toBe('k:1');
      await Promise.resolve();
      expect(b.busyKeys).toBe(0);
      const again = b.submit('k', 4); // and the key works again
      calls[1].release();
      await expect(again).resolves.toBe('k:4');
    } finally {
      jest.useRealTimers();
    }
  });
});
