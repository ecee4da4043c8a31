import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';

type MessageListener = (raw: string) => void;

/**
 * The one Redis subscriber connection of a replica, shared by every pub/sub
 * channel it listens on (cache invalidations, relayed cancellations). A
 * subscribed ioredis client can do nothing else, so it is a duplicate of the
 * shared connection, connected at the first `listen()`.
 *
 * A channel is subscribed at every 'ready' until one subscription succeeds:
 * ioredis re-subscribes on reconnection only the channels it had subscribed
 * before, so a replica that started while Redis was down would otherwise
 * never listen, even once Redis is back.
 */
export class RedisSubscriber {
  private readonly logger = new Logger('RedisSubscriber');
  private readonly connection: Redis;
  private readonly listeners = new Map<string, MessageListener>();
  /** Channels whose SUBSCRIBE has succeeded once (ioredis renews them itself after that). */
  private readonly subscribed = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly firstSubscription = new Map<string, () => void>();

  constructor(publisher: Redis) {
    this.connection = publisher.duplicate({ lazyConnect: true });
    this.connection.on('error', (err: Error) => this.logger.warn(`Redis subscriber: ${err.message}`));
    this.connection.on('ready', () => this.subscribeMissing());
    this.connection.on('message', (channel: string, raw: string) => {
      const listener = this.listeners.get(channel);
      if (!listener) return;
      // Called from the socket's data callback: a throw here would be an uncaught exception.
      try {
        listener(raw);
      } catch (err) {
        this.logger.warn(`A message on ${channel} failed: ${(err as Error).message}`);
      }
    });
  }

  /**
   * Hands every message of `channel` to `listener` from now on. Resolves when
   * the channel is subscribed, or after `waitMs`, whichever comes first (a
   * replica whose Redis is down serves anyway, and subscribes when Redis is back).
   */
  listen(channel: string, listener: MessageListener, waitMs: number): Promise<void> {
    if (this.listeners.has(channel)) throw new Error(`${channel} has a listener already`);
    this.listeners.set(channel, listener);
    const first = new Promise<void>((resolve) => this.firstSubscription.set(channel, resolve));
    if (this.connection.status === 'wait') {
      this.connection.connect().catch((err: Error) => this.logger.warn(`Redis unreachable, subscribing when it is back: ${err.message}`));
    } else if (this.connection.status === 'ready') {
      this.subscribeMissing();
    } // otherwise connecting or reconnecting: the next 'ready' subscribes it
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    return Promise.race([first, timeout]).finally(() => clearTimeout(timer));
  }

  /** `callback` runs at every connection, the first included, after ioredis has renewed its subscriptions. */
  onReady(callback: () => void): void {
    this.connection.on('ready', callback);
  }

  async close(): Promise<void> {
    this.connection.removeAllListeners('ready');
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  private subscribeMissing(): void {
    for (const channel of this.listeners.keys()) {
      if (this.subscribed.has(channel) || this.inFlight.has(channel)) continue;
      this.inFlight.add(channel);
      this.connection
        .subscribe(channel)
        .then(
          () => {
            this.subscribed.add(channel);
            this.firstSubscription.get(channel)?.();
            this.firstSubscription.delete(channel);
          },
          (err: Error) => this.logger.warn(`Could not subscribe to ${channel} yet: ${err.message}`),
        )
        .finally(() => this.inFlight.delete(channel));
    }
  }
}
