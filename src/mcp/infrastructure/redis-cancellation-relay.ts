import { Logger, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { RedisSubscriber } from '../../redis/redis-subscriber';
import { CancellationRelay, parseRelayedCancellation, RelayedCancellation } from '../domain/cancellation-relay';

/** The pub/sub channel of clients' cancellations. */
export const CANCELLATION_CHANNEL = 'tollgate:mcp-cancel';

/** A failed publish is logged once per this interval at most (Redis down, a busy client cancelling). */
const WARN_EVERY_MS = 60_000;

/**
 * Clients' cancellations through Redis pub/sub, to every replica. Publishing
 * goes through the shared connection; receiving through the replica's
 * subscriber connection. Messages carry the sender's origin, so
 * a replica ignores its own. Pub/sub keeps nothing: a replica that is not
 * subscribed at that moment never hears of the cancellation, and its call
 * completes.
 */
export class RedisCancellationRelay extends CancellationRelay implements OnModuleInit {
  readonly shared = true;
  private readonly logger = new Logger('CancellationRelay');
  private readonly origin = randomUUID();
  private handler: ((c: RelayedCancellation) => void) | undefined;
  private lastWarnAt = 0;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: RedisSubscriber,
  ) {
    super();
  }

  async onModuleInit(): Promise<void> {
    const received = (raw: string) => {
      const cancellation = parseRelayedCancellation(raw, this.origin);
      if (cancellation) this.handler?.(cancellation);
    };
    // Not waited for past a second: a replica whose Redis is down at start serves anyway, and
    // subscribes when Redis comes back.
    await this.subscriber.listen(CANCELLATION_CHANNEL, received, 1_000);
  }

  publish(cancellation: RelayedCancellation): void {
    const payload = JSON.stringify({ ...cancellation, origin: this.origin });
    this.publisher.publish(CANCELLATION_CHANNEL, payload).catch((err: Error) => {
      const now = Date.now();
      if (now - this.lastWarnAt < WARN_EVERY_MS) return;
      this.lastWarnAt = now;
      this.logger.warn(`Could not relay a client's cancellation to the other replicas: ${err.message}`);
    });
  }

  onReceive(handler: (cancellation: RelayedCancellation) => void): void {
    this.handler = handler;
  }
}
