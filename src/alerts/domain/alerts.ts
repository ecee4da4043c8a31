import type { TransactionContext } from '../../shared/domain/unit-of-work';

export type AlertType = 'credits.low' | 'quota.threshold' | 'key.expiring' | 'key.leaked';

export interface AlertSettings {
  tenantId: string;
  url: string;
  /** HMAC secret the receiver verifies Tollgate-Signature with (decrypted). */
  secret: string;
  creditsThreshold: number;
  keyExpiryDays: number;
}

export interface AlertDelivery {
  id: string;
  tenantId: string;
  type: AlertType;
  dedupeKey: string;
  payload: Record<string, unknown>;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: Date;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

export const MAX_ATTEMPTS = 8;

/** Seconds before retry number `attempts` (1, 2, 4 … capped at one hour). */
export function backoffSeconds(attempts: number): number {
  return Math.min(3600, 2 ** Math.max(0, attempts - 1));
}

export type QuotaMetric = 'requests' | 'tokens';
export const QUOTA_THRESHOLDS = [80, 100] as const;

/**
 * The quota thresholds (in %) that `used` has reached: `used >= ceil(limit · pct / 100)`.
 * A test of the state, not of the step that got there, so a jump over a threshold (a
 * token flush, a plan changed below what is already used) is caught like a single step.
 * Each is alerted once per month, metric, limit and percentage ({@link quotaAlertKey}).
 */
export function crossedQuotaThresholds(used: number, limit: number): number[] {
  if (limit <= 0) return [];
  return QUOTA_THRESHOLDS.filter((pct) => used >= Math.ceil((limit * pct) / 100));
}

/** Dedupe key of a quota alert: a new plan (a new limit) alerts afresh, within the month. */
export function quotaAlertKey(month: string, metric: QuotaMetric, limit: number, pct: number): string {
  return `quota:${month}:${metric}:${limit}:${pct}`;
}

export interface QuotaUsage {
  metric: QuotaMetric;
  used: number;
  limit: number;
}

/** The quota.threshold alerts `usage` calls for in `month` (YYYY-MM), each with its dedupe key. */
export function quotaAlerts(month: string, plan: string, usage: QuotaUsage[]): { dedupeKey: string; payload: Record<string, unknown> }[] {
  return usage.flatMap(({ metric, used, limit }) =>
    crossedQuotaThresholds(used, limit).map((pct) => ({
      dedupeKey: quotaAlertKey(month, metric, limit, pct),
      payload: { plan, metric, percent: pct, used, limit, period: month },
    })),
  );
}

/** The balance went from at or above the threshold to below it. */
export function fellBelowThreshold(before: number, after: number, threshold: number): boolean {
  return before >= threshold && after < threshold;
}

/**
 * Dedupe key of credits.low: one alert per top-up (the tenant's latest grant or
 * purchase, null when there was none) and threshold. A refund lifts the balance
 * back over the threshold without re-arming it; a purchase or grant does.
 */
export function creditsLowKey(lastTopUpId: string | null, threshold: number): string {
  return `credits_low:${lastTopUpId ?? 'none'}:${threshold}`;
}

/** `YYYY-MM` of the month (UTC) containing `at`, and its first day (the quota period). */
export function quotaMonth(at: Date): { month: string; period: Date } {
  const period = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  return { month: period.toISOString().slice(0, 7), period };
}

export abstract class AlertRepository {
  abstract settings(tenantId: string): Promise<AlertSettings | null>;
  abstract saveSettings(s: AlertSettings): Promise<void>;
  abstract deleteSettings(tenantId: string): Promise<boolean>;
  /** Queues a delivery unless one with the same dedupe key exists; true when queued. */
  abstract enqueue(d: Pick<AlertDelivery, 'id' | 'tenantId' | 'type' | 'dedupeKey' | 'payload'>, tx?: TransactionContext): Promise<boolean>;
  /** Claims due deliveries for `leaseSeconds` (safe across replicas). */
  abstract claimDue(limit: number, leaseSeconds: number): Promise<AlertDelivery[]>;
  abstract markDelivered(id: string, status: number): Promise<void>;
  abstract markFailedAttempt(id: string, attempts: number, status: number | null, error: string, nextAttemptAt: Date | null): Promise<void>;
  abstract list(tenantId: string, limit: number): Promise<AlertDelivery[]>;
  /** The id of the tenant's latest credit top-up (grant or purchase); null when there is none. */
  abstract lastTopUp(tenantId: string): Promise<string | null>;
  /** This period's quota counters of the given tenants (absent: nothing used yet). */
  abstract quotaUsage(period: Date, tenantIds: string[]): Promise<Map<string, { requests: number; tokens: number }>>;
  /** Live keys of tenants with alerts configured that expire within their window. */
  abstract expiringKeys(now: Date): Promise<{ tenantId: string; keyId: string; name: string; expiresAt: Date }[]>;
}

/** Port: the quotas in force for a tenant (its effective plan's), and news of plan changes. */
export abstract class TenantQuotas {
  abstract limitsOf(tenantId: string): Promise<{ plan: string; requests: number; tokens: number }>;
  /** `handler` is called with the tenant whose plan changed (on every replica), or null when any may have. */
  abstract onPlanChanged(handler: (tenantId: string | null) => void): void;
}

/** Port: sends one signed POST; resolves with the HTTP status or throws on network failure. */
export abstract class AlertSender {
  abstract send(url: string, body: string, signature: string, timeoutMs: number): Promise<number>;
}
