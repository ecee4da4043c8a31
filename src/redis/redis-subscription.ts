import type Redis from 'ioredis';

/**
 * Subscribes `subscriber` (a lazily connecting ioredis client of its own) to
 * `channel` as soon as it is ready, and again at every later 'ready' until one
 * subscription has succeeded. ioredis re-subscribes on reconnection only the
 * channels it had subscribed before, so a replica that started while Redis was
 * down would otherwise never listen, even once Redis is back. Resolves when
 * the first subscription succeeds, or after `waitMs`, whichever comes first.
 */
export function subscribeWhenReady(subscriber: Redis, channel: string, warn: (message: string) => void, waitMs: number): Promise<void> {
  let subscribed = false;
  let done: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (done = resolve));
  const attempt = () => {
    if (subscribed) return;
    subscriber.subscribe(channel).then(
      () => {
        subscribed = true;
        done();
      },
      (err: Error) => warn(`Could not subscribe to ${channel} yet: ${err.message}`),
    );
  };
  subscriber.on('ready', attempt);
  subscriber.connect().catch((err: Error) => warn(`Could not subscribe to ${channel} yet (Redis unreachable, retrying): ${err.message}`));
  const timer = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref());
  return Promise.race([first, timer]);
}
