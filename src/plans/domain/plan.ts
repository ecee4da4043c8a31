import { FieldError, ValidationFailedError } from '../../shared/domain/domain-error';

export interface Plan {
  id: string;
  name: string;
  /** `toolCallsPerMinute`: a stricter window for the expensive route (tool calls); unset = none. */
  rateLimits: { perMinute: number; perHour: number; toolCallsPerMinute?: number };
  quotas: { requestsPerMonth: number; tokensPerMonth: number };
  maxKeys: number;
  includedCredits: number;
  /** K10: longest lifetime (days from creation to expiry) the key hygiene report accepts; unset = no maximum. */
  maxKeyLifetimeDays?: number;
}

export type SubscriptionStatus = 'active' | 'past_due' | 'canceled';
export const SUBSCRIPTION_STATUSES: SubscriptionStatus[] = ['active', 'past_due', 'canceled'];

/** Built-in plans (P1); PLANS_FILE replaces or adds plans by id. `free` must always exist. */
export const BUILT_IN_PLANS: Plan[] = [
  {
    id: 'free',
    name: 'Free',
    rateLimits: { perMinute: 60, perHour: 1_000, toolCallsPerMinute: 30 },
    quotas: { requestsPerMonth: 1_000, tokensPerMonth: 1_000_000 },
    maxKeys: 25,
    includedCredits: 100,
  },
  {
    id: 'pro',
    name: 'Pro',
    rateLimits: { perMinute: 600, perHour: 20_000, toolCallsPerMinute: 300 },
    quotas: { requestsPerMonth: 100_000, tokensPerMonth: 50_000_000 },
    maxKeys: 100,
    includedCredits: 10_000,
  },
  {
    id: 'enterprise',
    name: 'Enterprise',
    rateLimits: { perMinute: 6_000, perHour: 200_000, toolCallsPerMinute: 3_000 },
    quotas: { requestsPerMonth: 10_000_000, tokensPerMonth: 5_000_000_000 },
    maxKeys: 10_000,
    includedCredits: 1_000_000,
  },
];

export class UnknownPlanError extends ValidationFailedError {
  constructor(id: string, field = 'plan') {
    super([{ field, message: `unknown plan "${id}"` }], `Unknown plan "${id}".`);
  }
}

/** The plans in force: a lookup that never defaults silently. */
export class PlanCatalog {
  private readonly byId: Map<string, Plan>;

  constructor(plans: Plan[]) {
    this.byId = new Map(plans.map((p) => [p.id, p]));
    if (!this.byId.has('free')) throw new Error('The plan catalog must contain a "free" plan');
  }

  static fromOverrides(raw: unknown | null): PlanCatalog {
    if (raw === null) return new PlanCatalog(BUILT_IN_PLANS);
    const overrides = parsePlans(raw);
    const merged = new Map(BUILT_IN_PLANS.map((p) => [p.id, p]));
    for (const p of overrides) merged.set(p.id, p);
    return new PlanCatalog([...merged.values()]);
  }

  all(): Plan[] {
    return [...this.byId.values()];
  }

  get(id: string): Plan {
    const plan = this.byId.get(id);
    if (!plan) throw new UnknownPlanError(id);
    return plan;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** What a tenant gets: past_due and canceled fall back to free, never to unlimited. */
  effective(planId: string, status: SubscriptionStatus): Plan {
    if (status !== 'active') return this.get('free');
    return this.byId.get(planId) ?? this.get('free');
  }
}

const PLAN_ID = /^[a-z0-9-]{1,32}$/;

/** PLANS_FILE: `[{id, name, rate_limits: {per_minute, per_hour}, quotas: {requests_per_month, tokens_per_month}, max_keys, included_credits, max_key_lifetime_days?}]`. */
export function parsePlans(raw: unknown): Plan[] {
  const errors: FieldError[] = [];
  if (!Array.isArray(raw)) throw new ValidationFailedError([{ field: 'PLANS_FILE', message: 'must contain a JSON array of plans' }]);
  const plans: Plan[] = [];
  raw.forEach((e: unknown, i) => {
    const at = (f: string) => `PLANS_FILE[${i}].${f}`;
    const o = (e ?? {}) as Record<string, any>;
    const int = (v: unknown, f: string) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) errors.push({ field: at(f), message: 'must be a non-negative integer' });
      return v as number;
    };
    const positive = (v: unknown, f: string) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) errors.push({ field: at(f), message: 'must be a positive integer' });
      return v as number;
    };
    if (typeof o.id !== 'string' || !PLAN_ID.test(o.id)) errors.push({ field: at('id'), message: 'must match ^[a-z0-9-]{1,32}$' });
    plans.push({
      id: o.id,
      name: typeof o.name === 'string' && o.name ? o.name : o.id,
      rateLimits: {
        perMinute: int(o.rate_limits?.per_minute, 'rate_limits.per_minute'),
        perHour: int(o.rate_limits?.per_hour, 'rate_limits.per_hour'),
        ...(o.rate_limits?.tool_calls_per_minute === undefined
          ? {}
          : { toolCallsPerMinute: int(o.rate_limits.tool_calls_per_minute, 'rate_limits.tool_calls_per_minute') }),
      },
      quotas: {
        requestsPerMonth: int(o.quotas?.requests_per_month, 'quotas.requests_per_month'),
        tokensPerMonth: int(o.quotas?.tokens_per_month, 'quotas.tokens_per_month'),
      },
      maxKeys: int(o.max_keys, 'max_keys'),
      includedCredits: int(o.included_credits, 'included_credits'),
      ...(o.max_key_lifetime_days === undefined || o.max_key_lifetime_days === null
        ? {}
        : { maxKeyLifetimeDays: positive(o.max_key_lifetime_days, 'max_key_lifetime_days') }),
    });
  });
  if (errors.length) throw new ValidationFailedError(errors, 'PLANS_FILE is invalid.');
  return plans;
}

/** Start of the calendar month (UTC) containing `at`, and of the next one. */
export function monthWindow(at: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
  return { start, end };
}
