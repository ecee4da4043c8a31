import { DomainError } from '../../shared/domain/domain-error';

/** What an agent needs to pace itself or explain a refusal (API.md `quota_info`). */
export interface QuotaInfo {
  plan: string;
  limit: number;
  used: number;
  remaining: number;
  reset_at: string;
}

export class QuotaExceededError extends DomainError {
  constructor(
    readonly quotaInfo: QuotaInfo,
    readonly metric: 'requests' | 'tokens',
  ) {
    super(
      'quota_exceeded',
      `The monthly ${metric} quota of the "${quotaInfo.plan}" plan (${quotaInfo.limit}) is used up; it resets at ${quotaInfo.reset_at}. Upgrade the plan for more.`,
      { quota_info: quotaInfo, upgrade_hint: 'Upgrade to a plan with a larger quota (GET /api/v1/plans).' },
    );
  }
}

export class InsufficientCreditsError extends DomainError {
  constructor(
    readonly balance: number,
    readonly required: number,
    message = `This call costs ${required} credits and the balance is ${balance}.`,
    details: Record<string, unknown> = { balance, required },
  ) {
    super('insufficient_credits', message, details);
  }
}

/**
 * The key's own monthly credit cap (issue 4) is reached: the same code and
 * status as an empty balance (402), so agents need no new branch; the details
 * say which limit it was.
 */
export class KeyCreditCapExceededError extends InsufficientCreditsError {
  constructor(
    balance: number,
    required: number,
    readonly keyCap: number,
    readonly keySpent: number,
  ) {
    super(
      balance,
      required,
      `This API key's monthly credit cap of ${keyCap} is reached (${keySpent} spent this month, this call costs ${required}); it resets at the start of next month (UTC) or when an admin raises the cap.`,
      { balance, required, key_cap: keyCap, key_spent: keySpent },
    );
  }
}

export class RateLimitedError extends DomainError {
  constructor(
    readonly quotaInfo: QuotaInfo,
    readonly retryAfterSeconds: number,
  ) {
    super('rate_limited', `Rate limit of ${quotaInfo.limit} requests exceeded; retry in ${retryAfterSeconds} s.`, { quota_info: quotaInfo });
  }
}
