import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { hourStart, UsageCell, UsageEvent, UsageRepository } from '../domain/usage';

export const FLUSH_INTERVAL_MS = 1_000;

/**
 * U1/U3: usage is counted in memory and flushed every second (and on
 * shutdown) as a few upserts instead of one write per call. A failed flush
 * keeps the counts and retries: nothing is dropped. Request admission does not
 * depend on this buffer (quotas are taken transactionally at the door), so
 * buffering never lets a call through that the quota would refuse.
 */
@Injectable()
export class UsageBuffer implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UsageBuffer.name);
  private pending = new Map<string, UsageCell>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(private readonly repo: UsageRepository) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // Final flush, retried a few times: shutdown must not lose counted usage.
    for (let attempt = 0; attempt < 5 && this.pending.size > 0; attempt++) {
      await this.flush().catch((err: Error) => this.logger.error(`usage flush on shutdown failed: ${err.message}`));
    }
  }

  get depth(): number {
    return this.pending.size;
  }

  record(e: UsageEvent): void {
    const bucketStart = hourStart(e.at);
    const id = `${e.tenantId}|${e.keyId}|${e.tool}|${bucketStart.getTime()}`;
    const cell = this.pending.get(id);
    if (cell) {
      cell.requests += e.requests;
      cell.tokens += e.tokens;
      cell.credits += e.credits;
    } else {
      this.pending.set(id, { tenantId: e.tenantId, keyId: e.keyId, userId: e.userId, tool: e.tool, bucketStart, requests: e.requests, tokens: e.tokens, credits: e.credits });
    }
  }

  /** Writes everything counted so far; concurrent callers share one flush. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.repo.add([...batch.values()]).catch((err: Error) => {
      // Put the counts back (merged with anything recorded meanwhile) and retry next tick.
      for (const [id, cell] of batch) {
        const now = this.pending.get(id);
        if (now) {
          now.requests += cell.requests;
          now.tokens += cell.tokens;
          now.credits += cell.credits;
        } else this.pending.set(id, cell);
      }
      this.logger.warn(`usage flush failed (${batch.size} cells kept for retry): ${err.message}`);
      throw err;
    });
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }
}
