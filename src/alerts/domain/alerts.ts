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

/** Which quota thresholds (in %) the admission that brought `used` to its value just crossed. */
export function crossedQuotaThresholds(used: number, limit: number): number[] {
  if (limit <= 0) return [];
  return [80, 100].filter((pct) => used === Math.ceil((limit * pct) / 100));
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
  /** Live keys of tenants with alerts configured that expire within their window. */
  abstract expiringKeys(now: Date): Promise<{ tenantId: string; keyId: string; name: string; expiresAt: Date }[]>;
}

/** Port: sends one signed POST; resolves with the HTTP status or throws on network failure. */
export abstract class AlertSender {
  abstract send(url: string, body: string, signature: string, timeoutMs: number): Promise<number>;
}
