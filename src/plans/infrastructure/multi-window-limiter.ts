import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';

/** One rate-limit window of a request: the arguments of ThrottlerStorage.increment, named, and its weight. */
export interface LimitWindow {
  /** The throttler's name (minute, tool_call, hour): the `throttlerName` of ThrottlerStorage.increment. */
  name: string;
  key: string;
  ttlMs: number;
  limit: number;
  blockDurationMs: number;
  /**
   * How many hits the request counts in this window (a positive integer;
   * default 1), e.g. the messages of a JSON-RPC batch. N hits are N calls of
   * the library's `increment` on this window in a row, at the same instant:
   * all N are counted, and the request is blocked when the last of them is
   * (totalHits > limit, or the window already blocked), so a request that
   * does not fit is refused whole, never in part.
   */
  hits?: number;
}

export interface MultiWindowResult {
  /** Index of the window that refused the request, or -1 when every window admitted it. */
  blockedIndex: number;
  /**
   * One record per window evaluated, in order: every window when none refused,
   * else the windows up to and including the refusing one (the later ones were
   * not counted).
   */
  records: ThrottlerStorageRecord[];
}

/**
 * Counts one request (of `hits` hits per window) in several windows at once
 * (one Redis round trip), with the semantics of calling
 * ThrottlerStorage.increment `hits` times per window, window after window,
 * and stopping after the first window that blocks.
 */
export interface MultiWindowLimiter {
  hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult>;
}

export function isMultiWindowLimiter(storage: unknown): storage is MultiWindowLimiter {
  return typeof (storage as Partial<MultiWindowLimiter> | null)?.hitAll === 'function';
}

/** A window's weight: `hits`, 1 when unset; anything but a positive safe integer is a programming error. */
export function hitsOf(window: LimitWindow): number {
  const hits = window.hits ?? 1;
  if (!Number.isSafeInteger(hits) || hits < 1) throw new RangeError(`rate-limit window "${window.name}": hits must be a positive integer, got ${hits}`);
  return hits;
}

/**
 * The reference semantics: per window, `increment` as many times as the
 * window's hits (the request is blocked in that window when the last one is),
 * window after window, stopping at the first window that blocks.
 */
export async function hitSequentially(storage: ThrottlerStorage, windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
  const records: ThrottlerStorageRecord[] = [];
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    const hits = hitsOf(w);
    let record!: ThrottlerStorageRecord;
    for (let n = 0; n < hits; n++) record = await storage.increment(w.key, w.ttlMs, w.limit, w.blockDurationMs, w.name);
    records.push(record);
    if (record.isBlocked) return { blockedIndex: i, records };
  }
  return { blockedIndex: -1, records };
}
