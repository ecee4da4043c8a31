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
 * - `never_expires`: no `expires_at`;
 * - `idle`: last used more than `idleDays` ago; `never_used`: never used and created more than `idleDays` ago;
 * - `no_credit_cap`: no monthly credit cap;
 * - `over_max_lifetime`: the plan sets a maximum lifetime and the key has no expiry or expires later than creation + maximum.
 */
export function hygieneFindings(key: APIKey, now: Date, policy: HygienePolicy): HygieneFinding[] {
  const out: HygieneFinding[] = [];
  const idleBefore = now.getTime() - policy.idleDays * DAY_MS;
  if (key.expiresAt === null) out.push('never_expires');
  if (key.lastUsedAt !== null && key.lastUsedAt.getTime() < idleBefore) out.push('idle');
  if (key.lastUsedAt === null && key.createdAt.getTime() < idleBefore) out.push('never_used');
  if (key.monthlyCreditCap === null) out.push('no_credit_cap');
  if (policy.maxLifetimeDays !== null && (key.expiresAt === null || key.expiresAt.getTime() - key.createdAt.getTime() > policy.maxLifetimeDays * DAY_MS)) {
    out.push('over_max_lifetime');
  }
  return out;
}
