import { Logger, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { Invalidation, INVALIDATION_KINDS, InvalidationBus, parseInvalidation } from '../shared/domain/invalidation-bus';
import { RedisSubscriber } from './redis-subscriber';

/** The pub/sub channel every replica listens on. */
export const INVALIDATION_CHANNEL = 'tollgate:invalidate';

/** How long a publish may hold up the response that made the change (the change itself has committed). */
const PUBLISH_TIMEOUT_MS = 1_000;

/**
 * Fan-out of cache invalidations through Redis pub/sub. Publishing goes through
 * the shared connection; receiving through the replica's subscriber
 * connection. Messages carry the sender's origin so a replica does not evict
 * twice what it already evicted locally. Pub/sub is fire-and-forget: when the
 * subscriber reconnects, messages may have been missed, so every handler is
 * told to drop everything (`null`).
 */
export class RedisInvalidationBus extends InvalidationBus implements OnModuleInit {
  private readonly logger = new Logger('InvalidationBus');
  private readonly origin = randomUUID();
  private connectedOnce = false;
  private serving = false;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: RedisSubscriber,
  ) {
    super();
    subscriber.onReady(() => {
      // A reconnection, or a first connection after start-up (Redis was down then, and this replica
      // has served, and cached, without hearing anything since).
      if (this.connectedOnce || this.serving) {
        this.logger.warn('Redis subscriber reconnected: dropping every cached key, catalog and plan (messages may have been missed)');
        for (const kind of INVALIDATION_KINDS) this.deliver(kind, null);
      }
      this.connectedOnce = true;
    });
  }

  async onModuleInit(): Promise<void> {
    // Subscribed before the app serves: a replica never caches what it cannot hear about.
    // If Redis is down at start, it subscribes when Redis comes back (and the handlers reset then).
    const received = (raw: string) => {
      const m = parseInvalidation(raw);
      if (m && m.origin !== this.origin) this.deliver(m.kind, m.id);
    };
    await this.subscriber.listen(INVALIDATION_CHANNEL, received, 3_000);
    this.serving = true;
  }

  async publish(message: Invalidation): Promise<void> {
    this.deliver(message.kind, message.id);
    const payload = JSON.stringify({ kind: message.kind, id: message.id, origin: this.origin });
    try {
      await withTimeout(this.publisher.publish(INVALIDATION_CHANNEL, payload), PUBLISH_TIMEOUT_MS);
    } catch (err) {
      // Other replicas fall back to their cache TTLs (10 s keys, 30 s catalogs, 5 s plans).
      this.logger.warn(`Could not broadcast ${message.kind} invalidation: ${(err as Error).message}`);
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
