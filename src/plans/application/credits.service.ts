import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { ValidationFailedError } from '../../shared/domain/domain-error';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import { TenantCache } from '../../shared/domain/tenant-cache';
import { TransactionContext, UnitOfWork } from '../../shared/domain/unit-of-work';
import { CreditLedgerRepository, CreditTransaction, CreditType, ToolPriceRepository } from '../domain/billing.repositories';

const PRICE_TTL_MS = 5_000;

/**
 * P4: a credit balance per tenant and its ledger. Every movement is a row with
 * the balance after it; the account row is locked for the movement, so the
 * balance is exact and the CHECK (balance >= 0) is never even approached.
 */
@Injectable()
export class CreditsService {
  /** Each tenant's prices, dropped on every replica when one is set (TenantCache). */
  private readonly priceCache: TenantCache<Map<string, number>>;

  constructor(
    private readonly ledger: CreditLedgerRepository,
    private readonly prices: ToolPriceRepository,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditRecorder,
    private readonly config: AppConfig,
    private readonly bus: InvalidationBus,
  ) {
    this.priceCache = new TenantCache(bus, 'tenant_prices', PRICE_TTL_MS, (tenantId) => this.prices.prices(tenantId));
  }

  balance(tenantId: string): Promise<number> {
    return this.ledger.balance(tenantId);
  }

  transactions(tenantId: string, limit: number, cursor?: string): Promise<CreditTransaction[]> {
    // A ledger sequence number: a PostgreSQL bigint (a larger number was a 500 from the cast).
    if (cursor !== undefined && !(/^\d{1,19}$/.test(cursor) && BigInt(cursor) <= 9_223_372_036_854_775_807n)) {
      throw new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
    }
    return this.ledger.list(tenantId, limit, cursor);
  }

  async priceOf(tenantId: string, tool: string): Promise<number> {
    return (await this.priceCache.get(tenantId)).get(tool) ?? this.config.defaultToolPrice;
  }

  async listPrices(tenantId: string): Promise<{ default: number; tools: Record<string, number> }> {
    return { default: this.config.defaultToolPrice, tools: Object.fromEntries(await this.prices.prices(tenantId)) };
  }

  async setPrice(tenantId: string, tool: string, price: number | null, actor: Actor, request: RequestMeta): Promise<void> {
    await this.prices.set(tenantId, tool, price);
    // Here and on every replica at once (the cache's TTL only bounds a lost broadcast).
    await this.bus.publish({ kind: 'tenant_prices', id: tenantId });
    await this.audit.record({ tenantId, actor, action: 'credits.price_set', target: { type: 'mcp_tool', id: tool }, request, metadata: { price } });
  }

  /** Purchase (billing webhook) or manual grant; idempotent by `reference`. False when already applied. */
  async add(
    tenantId: string,
    type: 'purchase' | 'grant',
    amount: number,
    reference: string,
    actor: Actor,
    request?: RequestMeta,
    outer?: TransactionContext,
  ): Promise<boolean> {
    if (!Number.isSafeInteger(amount) || amount <= 0) throw new ValidationFailedError([{ field: 'amount', message: 'must be a positive integer' }]);
    const run = <T>(work: (tx: TransactionContext) => Promise<T>) => (outer ? work(outer) : this.uow.run(work));
    return run(async (tx) => {
      const account = await this.ledger.lockAccount(tenantId, tx);
      const balance = account.balance + amount;
      const applied = await this.ledger.append({ id: randomUUID(), tenantId, type, amount, balanceAfter: balance, keyId: null, tool: null, reference }, tx);
      if (!applied) return false;
      await this.ledger.setBalance(tenantId, balance, account.lastGrantPeriod, tx);
      await this.audit.record({ tenantId, actor, action: `credits.${type === 'purchase' ? 'purchased' : 'granted'}`, target: { type: 'tenant', id: tenantId }, request, metadata: { amount, balance_after: balance, reference } }, tx);
      return true;
    });
  }

  /**
   * P4: a month's included credits are those of the best plan the tenant was
   * on that month. A plan change grants them at once: the whole allowance of
   * the new plan when the month has no grant yet (its first call then grants
   * nothing more, even with a plan it read before the change), the difference
   * when the new plan's allowance is higher than what the month was granted
   * (an upgrade, a payment that ends `past_due`); once per plan and month (the
   * ledger reference `monthly:<month>:<plan>` is unique). A plan that falls
   * takes nothing back. The account is locked first, so a grant made by an
   * admission in flight is seen. Returns the credits granted.
   */
  async topUpMonthlyGrant(tenantId: string, plan: { id: string; includedCredits: number }, period: Date, actor: Actor, tx: TransactionContext): Promise<number> {
    if (plan.includedCredits <= 0) return 0;
    const account = await this.ledger.lockAccount(tenantId, tx);
    const month = period.toISOString().slice(0, 7);
    const grantedBefore = account.lastGrantPeriod !== null && account.lastGrantPeriod.getTime() >= period.getTime();
    const missing = plan.includedCredits - (grantedBefore ? await this.ledger.grantedWithPrefix(tenantId, `monthly:${month}:`, tx) : 0);
    if (missing <= 0) return 0;
    const balance = account.balance + missing;
    const reference = `monthly:${month}:${plan.id}`;
    const applied = await this.ledger.append({ id: randomUUID(), tenantId, type: 'grant', amount: missing, balanceAfter: balance, keyId: null, tool: null, reference }, tx);
    if (!applied) return 0;
    await this.ledger.setBalance(tenantId, balance, grantedBefore ? account.lastGrantPeriod : period, tx);
    await this.audit.record(
      {
        tenantId,
        actor,
        action: 'credits.granted',
        target: { type: 'tenant', id: tenantId },
        metadata: { amount: missing, balance_after: balance, reference, reason: grantedBefore ? 'plan_raised' : 'plan_changed' },
      },
      tx,
    );
    return missing;
  }

  /**
   * Gives back a charge (the call was not served), also to the key's monthly
   * spend of `period` (the month it was charged in; its cap, issue 4).
   */
  async refund(tenantId: string, amount: number, keyId: string, tool: string, tx: TransactionContext, period?: Date): Promise<number> {
    const account = await this.ledger.lockAccount(tenantId, tx);
    if (period) await this.ledger.unspend(keyId, period, amount, tx);
    const balance = account.balance + amount;
    await this.ledger.append({ id: randomUUID(), tenantId, type: 'refund' as CreditType, amount, balanceAfter: balance, keyId, tool, reference: null }, tx);
    await this.ledger.setBalance(tenantId, balance, account.lastGrantPeriod, tx);
    return balance;
  }
}
