import { Injectable } from '@nestjs/common';
import { AlertsService } from '../../alerts/application/alerts.service';
import { Clock } from '../../shared/domain/clock';
import { UnitOfWork } from '../../shared/domain/unit-of-work';
import { AdmissionStore, QuotaCounterRepository } from '../domain/billing.repositories';
import { InsufficientCreditsError, KeyCreditCapExceededError, QuotaExceededError, QuotaInfo } from '../domain/billing.errors';
import { monthWindow, Plan } from '../domain/plan';
import { CreditsService } from './credits.service';
import { SubscriptionsService } from './subscriptions.service';

/** A call that was let in: what it took, so it can be given back if the call is not served. */
export interface Admission {
  tenantId: string;
  keyId: string;
  tool: string;
  plan: Plan;
  period: Date;
  resetAt: Date;
  price: number;
  requestsUsed: number;
  tokensUsed: number;
  balance: number;
  /** The key's monthly cap and its spend after this call (null: no cap, or nothing charged). */
  keyCap: number | null;
  keySpent: number | null;
}

/** The budget an agent sees in `_meta` after a call (M6). */
export interface Budget {
  plan: string;
  requests_remaining: number;
  tokens_remaining: number;
  credits_remaining: number;
  reset_at: string;
}

/**
 * P3 + P4 at the door of every tool call, exact across replicas: one
 * PostgreSQL transaction takes a request from the month's quota (conditional
 * UPDATE) and the tool's price from the credit balance (locked account row).
 * Either refusal rolls both back, so a refused call costs nothing; a call the
 * upstream did not serve is released (quota) and refunded (ledger row).
 */
@Injectable()
export class CallAdmission {
  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly credits: CreditsService,
    private readonly quotas: QuotaCounterRepository,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
    private readonly alerts: AlertsService,
    private readonly store: AdmissionStore,
  ) {}

  /**
   * `keyCap`: the API key's monthly credit cap (null or absent = none; OAuth callers have none).
   * `cost`: what to charge instead of the tool's price (a verification with `cost`, K8).
   */
  async admit(tenantId: string, keyId: string, tool: string, keyCap: number | null = null, cost?: number): Promise<Admission> {
    const [{ plan }, price] = await Promise.all([this.subscriptions.planFor(tenantId), cost !== undefined ? cost : this.credits.priceOf(tenantId, tool)]);
    const { start: period, end: resetAt } = monthWindow(this.clock.now());
    // One atomic step in PostgreSQL (tollgate_admit): quota, the month's grant, the charge and its ledger rows.
    const r = await this.store.admit({
      tenantId,
      period,
      maxRequests: plan.quotas.requestsPerMonth,
      maxTokens: plan.quotas.tokensPerMonth,
      price,
      keyId,
      tool,
      grant: plan.includedCredits,
      grantReference: `monthly:${period.toISOString().slice(0, 7)}:${plan.id}`,
      keyCap,
    });
    if (r.outcome === 'quota_exceeded') {
      const tokens = r.requests < plan.quotas.requestsPerMonth;
      throw new QuotaExceededError(
        quotaInfo(plan, tokens ? plan.quotas.tokensPerMonth : plan.quotas.requestsPerMonth, tokens ? r.tokens : r.requests, resetAt),
        tokens ? 'tokens' : 'requests',
      );
    }
    if (r.outcome === 'insufficient_credits') throw new InsufficientCreditsError(r.balance, price);
    if (r.outcome === 'key_cap_exceeded') throw new KeyCreditCapExceededError(r.balance, price, keyCap ?? 0, r.keySpent);
    const admitted: Admission = { tenantId, keyId, tool, plan, period, resetAt, price, requestsUsed: r.requests, tokensUsed: r.tokens, balance: r.balance, keyCap, keySpent: r.keySpent };
    // P6 after commit and off the response path: quota at 80 % / 100 %, credits under the threshold.
    void this.alerts
      .afterAdmission({
        tenantId,
        plan: plan.id,
        period,
        requestsUsed: admitted.requestsUsed,
        requestsLimit: plan.quotas.requestsPerMonth,
        balanceBefore: admitted.balance + price,
        balanceAfter: admitted.balance,
      })
      .catch(() => undefined);
    return admitted;
  }

  /** The call was not served: give back the request and the credits. */
  async release(a: Admission): Promise<void> {
    await this.uow.run(async (tx) => {
      await this.quotas.release(a.tenantId, a.period, tx);
      if (a.price > 0) {
        a.balance = await this.credits.refund(a.tenantId, a.price, a.keyId, a.tool, tx, a.period);
        if (a.keySpent !== null) a.keySpent = Math.max(0, a.keySpent - a.price);
      }
    });
  }

  budget(a: Admission, extraTokens = 0): Budget {
    return {
      plan: a.plan.id,
      requests_remaining: Math.max(0, a.plan.quotas.requestsPerMonth - a.requestsUsed),
      tokens_remaining: Math.max(0, a.plan.quotas.tokensPerMonth - a.tokensUsed - extraTokens),
      // A capped key may spend less than the tenant holds: the agent sees what its key can still spend.
      credits_remaining: a.keyCap !== null && a.keySpent !== null ? Math.min(a.balance, Math.max(0, a.keyCap - a.keySpent)) : a.balance,
      reset_at: a.resetAt.toISOString(),
    };
  }
}

export function quotaInfo(plan: Plan, limit: number, used: number, resetAt: Date): QuotaInfo {
  return { plan: plan.id, limit, used, remaining: Math.max(0, limit - used), reset_at: resetAt.toISOString() };
}
