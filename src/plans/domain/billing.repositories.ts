import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { SubscriptionStatus } from './plan';

export interface Subscription {
  tenantId: string;
  planId: string;
  status: SubscriptionStatus;
}

export abstract class SubscriptionRepository {
  abstract find(tenantId: string): Promise<Subscription | null>;
  /** Ensures the tenant exists, then sets plan and status. */
  abstract set(sub: Subscription, tx: TransactionContext): Promise<Subscription | null>;
}

export abstract class QuotaCounterRepository {
  /** Admission itself is AdmissionStore.admit (one atomic step); this gives a request back. */
  abstract release(tenantId: string, period: Date, tx: TransactionContext): Promise<void>;
}

export type CreditType = 'grant' | 'purchase' | 'charge' | 'refund';

export interface CreditTransaction {
  id: string;
  seq: string;
  tenantId: string;
  type: CreditType;
  amount: number;
  balanceAfter: number;
  keyId: string | null;
  tool: string | null;
  reference: string | null;
  createdAt: Date;
}

export interface CreditAccount {
  balance: number;
  lastGrantPeriod: Date | null;
}

export abstract class CreditLedgerRepository {
  /** Creates the account if needed and row-locks it until `tx` ends. */
  abstract lockAccount(tenantId: string, tx: TransactionContext): Promise<CreditAccount>;
  abstract setBalance(tenantId: string, balance: number, lastGrantPeriod: Date | null, tx: TransactionContext): Promise<void>;
  /** False when a grant or purchase with this reference already exists (idempotency). */
  abstract append(t: Omit<CreditTransaction, 'seq' | 'createdAt'>, tx: TransactionContext): Promise<boolean>;
  abstract balance(tenantId: string): Promise<number>;
  /** Takes a refunded charge off the key's spend for the month it was charged in (key_spend; never below 0). */
  abstract unspend(keyId: string, period: Date, amount: number, tx: TransactionContext): Promise<void>;
  /** Sum of the tenant's grants whose reference starts with `prefix` (e.g. the month's `monthly:2026-11:`). */
  abstract grantedWithPrefix(tenantId: string, prefix: string, tx: TransactionContext): Promise<number>;
  abstract list(tenantId: string, limit: number, beforeSeq?: string): Promise<CreditTransaction[]>;
}

export abstract class ToolPriceRepository {
  abstract prices(tenantId: string): Promise<Map<string, number>>;
  abstract set(tenantId: string, tool: string, price: number | null): Promise<void>;
}

/** Received billing webhook events: the primary key on the event id makes replays no-ops. */
export abstract class BillingEventRepository {
  /** False when the event id was seen before. */
  abstract record(e: { id: string; type: string; tenantId: string | null; payload: unknown }, tx: TransactionContext): Promise<boolean>;
}

export type AdmitOutcome =
  /** `keySpent`: a capped key's spend this month after the call (its rotation chain's); null without a cap or a charge. */
  | { outcome: 'admitted'; requests: number; tokens: number; balance: number; keySpent: number | null }
  | { outcome: 'quota_exceeded'; requests: number; tokens: number }
  | { outcome: 'insufficient_credits'; balance: number }
  | { outcome: 'key_cap_exceeded'; balance: number; keySpent: number };

/** Port: the whole admission (quota, monthly grant, charge, ledger) as one atomic step. */
export abstract class AdmissionStore {
  abstract admit(input: {
    tenantId: string;
    period: Date;
    maxRequests: number;
    maxTokens: number;
    price: number;
    keyId: string;
    tool: string;
    grant: number;
    grantReference: string;
    /** The key's monthly credit cap; null = none. */
    keyCap: number | null;
  }): Promise<AdmitOutcome>;
}
