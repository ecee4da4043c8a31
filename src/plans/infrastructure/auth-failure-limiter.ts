import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';

/** Failed agent authentications allowed per client IP and minute before 429 (brute-force brake). */
export const AUTH_FAILURES_PER_MINUTE = 30;

/**
 * Counts failed API-key authentications per IP in the throttler's storage
 * (Redis when configured, so the brake holds across replicas).
 */
@Injectable()
export class AuthFailureLimiter {
  constructor(@InjectThrottlerStorage() private readonly storage: ThrottlerStorage) {}

  /** Records a failure; returns the seconds to wait when the IP is over the limit, else null. */
  async fail(ip: string): Promise<number | null> {
    const r = await this.storage.increment(`tg:authfail:${ip}`, 60_000, AUTH_FAILURES_PER_MINUTE, 60_000, 'auth-failures');
    return r.isBlocked ? Math.max(1, r.timeToBlockExpire) : null;
  }
}
