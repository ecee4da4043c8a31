import type { APIKey } from './api-key';

/** What the key hygiene report (K10) can say about a live key. */
export type HygieneFinding = 'never_expires' | 'idle' | 'never_used' | 'no_credit_cap' | 'over_max_lifetime';

export const HYGIENE_FINDINGS: HygieneFinding[] = ['never_expires', 'idle', 'never_used', 'no_credit_cap', 'over_max_lifetime'];

export interface HygienePolicy {
  /** A key not used for this many days is idle (never used and created this long ago: never_used). */
  idleDays: number;
  /** The plan's maximum lifetime in days (creation to expiry); null = none. */
  maxLifetimeDays: number | null;
}

const DAY_MS = 86_400_000;

/**
 * The findings for one live key (not revoked, not expired), in a fixed order:
 * - `never_expires`: no `expires_at` (and not a rotated key in its grace period, which ends with it);
 * - `idle`: last used more than `idleDays` ago; `never_used`: never used and created more than `idleDays` ago;
 * - `no_credit_cap`: no monthly credit cap;
 * - `over_max_lifetime`: the plan sets a maximum lifetime and the key has no expiry or expires later than creation + maximum.
 */
export function hygieneFindings(key: APIKey, now: Date, policy: HygienePolicy): HygieneFinding[] {
  const out: HygieneFinding[] = [];
  const idleBefore = now.getTime() - policy.idleDays * DAY_MS;
  // A rotated key in its grace period ends when the grace does, whatever its expires_at.
  const ends = [key.expiresAt, key.graceUntil].filter((d): d is Date => d !== null).map((d) => d.getTime());
  const endsAt = ends.length ? Math.min(...ends) : null;
  if (endsAt === null) out.push('never_expires');
  if (key.lastUsedAt !== null && key.lastUsedAt.getTime() < idleBefore) out.push('idle');
  if (key.lastUsedAt === null && key.createdAt.getTime() < idleBefore) out.push('never_used');
  if (key.monthlyCreditCap === null) out.push('no_credit_cap');
  if (policy.maxLifetimeDays !== null && (endsAt === null || endsAt - key.createdAt.getTime() > policy.maxLifetimeDays * DAY_MS)) {
    out.push('over_max_lifetime');
  }
  return out;
}
