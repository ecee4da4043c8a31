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
 */
export class KeyedBatcher<I, O> {
  private readonly queues = new Map<string, Pending<I, O>[]>();
  /** Batches sent and items in them since start (for metrics and tests). */
  batches = 0;
  items = 0;

  constructor(
    private readonly run: (key: string, items: I[]) => Promise<O[]>,
    private readonly maxBatch = 100,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  }

  submit(key: string, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const queued = this.queues.get(key);
      if (queued) {
        queued.push({ item, resolve, reject });
        return;
      }
      // Nothing in flight for this key: start a batch now with this item.
      const queue: Pending<I, O>[] = [{ item, resolve, reject }];
      this.queues.set(key, queue);
      void this.drain(key, queue);
    });
  }

  /** Keys with a batch in flight. */
  get busyKeys(): number {
    return this.queues.size;
  }

  private async drain(key: string, queue: Pending<I, O>[]): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, this.maxBatch);
      this.batches += 1;
      this.items += batch.length;
      try {
        const results = await this.run(
          key,
          batch.map((p) => p.item),
        );
        if (results.length !== batch.length) throw new Error(`batch of ${batch.length} returned ${results.length} results`);
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.queues.delete(key);
  }
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}
