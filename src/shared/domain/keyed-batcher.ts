/**
 * Coalesces concurrent work per key ("natural batching", the group commit of
 * databases): for each key at most one batch is in flight; what is submitted
 * meanwhile waits and goes, in submission order, in the next batch (at most
 * `maxBatch` items). A lone call is sent at once: nothing waits on a timer, so
 * batching adds no latency when there is no concurrency, and under
 * concurrency a call waits only for the batch before it — which it would have
 * waited for anyway when the work serialises on one lock (one tenant's quota
 * and credit rows).
 *
 * Written here rather than taken from DataLoader, the common library for
 * batching: DataLoader gathers what is submitted in one tick and sends each
 * batch as soon as the tick ends, so batches of one key overlap (and would
 * queue on the same row lock); it also caches results by key, which must not
 * happen for admissions.
 *
 * `run` gets the items of one batch and must return one result per item, in
 * order. If it throws (or returns a wrong count), every item of that batch is
 * rejected with the error; the next batch still runs.
 *
 * Overload: waiting holds no resource, so it is bounded explicitly, as a pool
 * bounds the wait for a connection. When a key's batch has been in flight for
 * `maxWaitMs`, the items waiting behind it, and those that arrive until it
 * settles, are refused with `refuse('stalled')`; a key with `maxQueue` items
 * waiting refuses more with `refuse('queue_full')`.
 */
export type BatchRefusal = 'stalled' | 'queue_full';

export interface KeyedBatcherOptions {
  /** Items per batch at most (default 100). */
  maxBatch?: number;
  /** Items waiting per key at most (default: no limit). */
  maxQueue?: number;
  /** How long a batch may be in flight before the items waiting behind it are refused (default: no limit). */
  maxWaitMs?: number;
  /** The error a refused item is rejected with. */
  refuse?: (reason: BatchRefusal) => Error;
}

export class KeyedBatcher<I, O> {
  private readonly queues = new Map<string, KeyState<I, O>>();
  private readonly maxBatch: number;
  private readonly maxQueue: number;
  private readonly maxWaitMs: number;
  private readonly refuse: (reason: BatchRefusal) => Error;
  /** Batches sent and items in them since start (for metrics and tests). */
  batches = 0;
  items = 0;

  constructor(
    private readonly run: (key: string, items: I[]) => Promise<O[]>,
    options: KeyedBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 100;
    this.maxQueue = options.maxQueue ?? Infinity;
    this.maxWaitMs = options.maxWaitMs ?? Infinity;
    this.refuse = options.refuse ?? ((reason) => new Error(`batch refused: ${reason}`));
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${this.maxBatch}`);
    if (!(this.maxQueue >= 0)) throw new RangeError(`maxQueue must be >= 0, got ${this.maxQueue}`);
    if (!(this.maxWaitMs > 0)) throw new RangeError(`maxWaitMs must be > 0, got ${this.maxWaitMs}`);
  }

  submit(key: string, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const state = this.queues.get(key);
      if (state) {
        if (state.stalled) reject(this.refuse('stalled'));
        else if (state.queue.length >= this.maxQueue) reject(this.refuse('queue_full'));
        else state.queue.push({ item, resolve, reject });
        return;
      }
      // Nothing in flight for this key: start a batch now with this item.
      const fresh: KeyState<I, O> = { queue: [{ item, resolve, reject }], stalled: false };
      this.queues.set(key, fresh);
      void this.drain(key, fresh);
    });
  }

  /** Keys with a batch in flight. */
  get busyKeys(): number {
    return this.queues.size;
  }

  private async drain(key: string, state: KeyState<I, O>): Promise<void> {
    while (state.queue.length > 0) {
      const batch = state.queue.splice(0, this.maxBatch);
      this.batches += 1;
      this.items += batch.length;
      const timer = Number.isFinite(this.maxWaitMs) ? setTimeout(() => this.stall(state), this.maxWaitMs) : undefined;
      timer?.unref();
      try {
        const results = await this.run(
          key,
          batch.map((p) => p.item),
        );
        if (results.length !== batch.length) throw new Error(`batch of ${batch.length} returned ${results.length} results`);
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        for (const p of batch) p.reject(err);
      } finally {
        clearTimeout(timer);
        state.stalled = false;
      }
    }
    this.queues.delete(key);
  }

  /** The batch in flight is late: refuse who waits behind it, and who comes, until it settles. */
  private stall(state: KeyState<I, O>): void {
    state.stalled = true;
    for (const p of state.queue.splice(0)) p.reject(this.refuse('stalled'));
  }
}

interface KeyState<I, O> {
  queue: Pending<I, O>[];
  stalled: boolean;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}
