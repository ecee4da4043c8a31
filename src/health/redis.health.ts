import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { RedisConnection } from '../redis/redis.module';

/** Redis answers PING within the timeout (only checked when REDIS_URL is set). */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    private readonly redis: RedisConnection,
  ) {}

  get configured(): boolean {
    return this.redis.client !== null;
  }

  async pingCheck(key: string, timeoutMs: number): Promise<HealthIndicatorResult> {
    const check = this.indicator.check(key);
    const client = this.redis.client;
    if (!client) return check.up({ configured: false });
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        client.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (reply !== 'PONG') return check.down({ message: `unexpected reply ${String(reply).slice(0, 40)}` });
      return check.up();
    } catch (err) {
      return check.down({ message: (err as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}
