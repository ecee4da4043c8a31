import { Logger } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';
import { MemoryThrottlerStorage } from './memory-throttler.storage';
import type { LimitWindow, MultiWindowLimiter, MultiWindowResult } from './multi-window-limiter';

/** How long a Redis round trip may take before this request falls back to the local counters. */
export const REDIS_LIMIT_TIMEOUT_MS = 250;
/** While degraded, Redis is tried again at most this often (other requests go straight to memory). */
export const REDIS_PROBE_INTERVAL_MS = 1_000;

/**
 * Rate limits shared through Redis, with a documented degraded mode: when
 * Redis errors or is slow, each replica keeps limiting with in-process
 * counters (limits become per replica, never off) instead of failing agent
 * requests. Sharing resumes by itself when Redis answers again.
 */
export class ResilientThrottlerStorage implements ThrottlerStorage, MultiWindowLimiter {
  private readonly logger = new Logger('RateLimitStorage');
  private readonly local = new MemoryThrottlerStorage();
  private degradedSince: number | null = null;
  private lastProbe = 0;

  constructor(private readonly shared: ThrottlerStorage & MultiWindowLimiter) {}

  /** True while Redis is unusable and limits are enforced per replica. */
  get degraded(): boolean {
    return this.degradedSince !== null;
  }

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.sharedOrLocal(
      () => this.shared.increment(key, ttl, limit, blockDuration, throttlerName),
      () => this.local.increment(key, ttl, limit, blockDuration, throttlerName),
    );
  }

  /** All windows of a request in one Redis round trip, with the same degraded mode as `increment`. */
  async hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
    return this.sharedOrLocal(
      () => this.shared.hitAll(windows),
      () => this.local.hitAll(windows),
    );
  }

  private async sharedOrLocal<T>(viaRedis: () => Promise<T>, viaMemory: () => Promise<T>): Promise<T> {
    if (this.degradedSince !== null && Date.now() - this.lastProbe < REDIS_PROBE_INTERVAL_MS) {
      return viaMemory();
    }
    this.lastProbe = Date.now();
    try {
      const result = await withTimeout(viaRedis(), REDIS_LIMIT_TIMEOUT_MS);
      if (this.degradedSince !== null) {
        this.logger.warn(`Redis answers again after ${Date.now() - this.degradedSince} ms: rate limits are shared again`);
        this.degradedSince = null;
      }
      return result;
    } catch (err) {
      if (this.degradedSince === null) {
        this.degradedSince = Date.now();
        this.logger.error(`Redis unavailable (${(err as Error).message}): rate limits fall back to this replica's memory`);
      }
      return viaMemory();
    }
  }

  onApplicationShutdown(): void {
    this.local.onApplicationShutdown();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // On a busy event loop the timer can fire before the loop has read an answer that already came
    // back: setImmediate lets the pending I/O (the poll phase) settle `p` first, so a replica under
    // load does not take a fast Redis for a dead one (and let limits go per replica).
    const timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${ms} ms`))), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
