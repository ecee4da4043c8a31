import { createHmac, timingSafeEqual } from 'node:crypto';

export const MIN_PEPPER_LENGTH = 16;

/** Keys are stored only as HMAC-SHA256(pepper, secret), hex-encoded. */
export class KeyHasher {
  constructor(private readonly pepper: string) {
    if (typeof pepper !== 'string' || pepper.length < MIN_PEPPER_LENGTH) {
      throw new Error(`The key pepper must be at least ${MIN_PEPPER_LENGTH} characters long.`);
    }
  }

  hash(secret: string): string {
    return createHmac('sha256', this.pepper).update(secret, 'utf8').digest('hex');
  }

  /** Constant-time comparison; differing lengths return false without throwing. */
  static constantTimeEquals(a: string, b: string): boolean {
    const ba = Buffer.from(a, 'utf8');
    const bb = Buffer.from(b, 'utf8');
    if (ba.length !== bb.length) {
      timingSafeEqual(ba, ba); // keep the work comparable; the length itself is not secret
      return false;
    }
    return timingSafeEqual(ba, bb);
  }
}
