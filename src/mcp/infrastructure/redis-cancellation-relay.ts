import { Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { subscribeWhenReady } from '../../redis/redis-subscription';
import { CancellationRelay, parseRelayedCancellation, RelayedCancellation } from '../domain/cancellation-relay';

/** The pub/sub channel of clients' cancellations. */
export const CANCELLATION_CHANNEL = 'tollgate:mcp-cancel';

/** A failed publish is logged once per this interval at most (Redis down, a busy client cancelling). */
const WARN_EVERY_MS = 60_000;

/**
 * Clients' cancellations through Redis pub/sub, to every replica. Publishing
 * goes through the shared connection; receiving needs its own (a subscribed
 * ioredis client can do nothing else). Messages carry the sender's origin, so
 * a replica ignores its own. Pub/sub keeps nothing: a replica that is not
 * subscribed at that moment never hears of the cancellation, and its call
 * completes.
 */
export class RedisCancellationRelay extends CancellationRelay implements OnModuleInit, OnApplicationShutdown {
  readonly shared = true;
  private readonly logger = new Logger('CancellationRelay');
  private readonly origin = randomUUID();
  private readonly subscriber: Redis;
  private handler: ((c: RelayedCancellation) => void) | undefined;
  private lastWarnAt = 0;

  constructor(private readonly publisher: Redis) {
    super();
    this.subscriber = publisher.duplicate({ lazyConnect: true });
    this.subscriber.on('error', (err) => this.logger.warn(`Redis subscriber: ${err.message}`));
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== CANCELLATION_CHANNEL) return;
      const cancellation = parseRelayedCancellation(raw, this.origin);
      if (!cancellation) return;
      // Called from the socket's data callback: a throw here would be an uncaught exception.
      try {
        this.handler?.(cancellation);
      } catch (err) {
        this.logger.warn(`A relayed cancellation failed: ${(err as Error).message}`);
      }
    });
  }

  async onModuleInit(): Promise<void> {
    // Not waited for past a second: a replica whose Redis is down at start serves anyway, and
    // subscribes when Redis comes back.
    await subscribeWhenReady(this.subscriber, CANCELLATION_CHANNEL, (m) => this.logger.warn(m), 1_000);
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

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
