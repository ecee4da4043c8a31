import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';

/** One rate-limit window of a request: the arguments of ThrottlerStorage.increment, named. */
export interface LimitWindow {
  /** The throttler's name (minute, tool_call, hour): the `throttlerName` of ThrottlerStorage.increment. */
  name: string;
  key: string;
  ttlMs: number;
  limit: number;
  blockDurationMs: number;
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
 * Counts one request in several windows at once (one Redis round trip),
 * with the semantics of calling ThrottlerStorage.increment window after
 * window and stopping at the first window that blocks.
 */
export interface MultiWindowLimiter {
  hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult>;
}

export function isMultiWindowLimiter(storage: unknown): storage is MultiWindowLimiter {
  return typeof (storage as Partial<MultiWindowLimiter> | null)?.hitAll === 'function';
}

/** The reference semantics: increment window after window, stop at the first that blocks. */
export async function hitSequentially(storage: ThrottlerStorage, windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
  const records: ThrottlerStorageRecord[] = [];
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    const record = await storage.increment(w.key, w.ttlMs, w.limit, w.blockDurationMs, w.name);
    records.push(record);
    if (record.isBlocked) return { blockedIndex: i, records };
  }
  return { blockedIndex: -1, records };
}
