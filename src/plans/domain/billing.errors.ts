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
  ) {
    super('insufficient_credits', `This call costs ${required} credits and the balance is ${balance}.`, { balance, required });
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
