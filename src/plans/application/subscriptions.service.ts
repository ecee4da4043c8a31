import { Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import { TransactionContext, UnitOfWork } from '../../shared/domain/unit-of-work';
import { SubscriptionRepository } from '../domain/billing.repositories';
import { monthWindow, Plan, PlanCatalog, SubscriptionStatus } from '../domain/plan';
import { CreditsService } from './credits.service';

export interface TenantPlan {
  plan: Plan;
  /** The plan the tenant subscribed to (may differ from `plan` when past_due / canceled). */
  subscribedPlanId: string;
  status: SubscriptionStatus;
}

/** How long a replica trusts its copy of a tenant's plan (changes are broadcast and apply at once). */
const TTL_MS = 5_000;

/** P1: the plan catalog and each tenant's subscription. */
@Injectable()
export class SubscriptionsService {
  readonly catalog: PlanCatalog;
  private readonly cache = new Map<string, { value: TenantPlan; at: number }>();
  /**
   * Advanced by every invalidation (one tenant's or all): a lookup that started
   * before one may have read the old subscription, so it is not cached (see planFor).
   */
  private invalidations = 0;

  constructor(
    private readonly subscriptions: SubscriptionRepository,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditRecorder,
    config: AppConfig,
    private readonly bus: InvalidationBus,
    private readonly credits: CreditsService,
    private readonly clock: Clock,
  ) {
    bus.subscribe('tenant_plan', (tenantId) => {
      this.invalidations++;
      if (tenantId === null) this.cache.clear();
      else this.cache.delete(tenantId);
    });
    this.catalog = PlanCatalog.fromOverrides(config.plansFile ? JSON.parse(readFileSync(config.plansFile, 'utf8')) : null);
  }

  async planFor(tenantId: string): Promise<TenantPlan> {
    const hit = this.cache.get(tenantId);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.value;
    // Read before the lookup: if a plan change is invalidated while it is in flight, the row read may
    // predate it, and caching it would keep the old plan for TTL_MS. The caller still gets it (its
    // request started before the change); the next one reads again.
    const generation = this.invalidations;
    const sub = await this.subscriptions.find(tenantId);
    const subscribedPlanId = sub?.planId ?? 'free';
    const status = sub?.status ?? 'active';
    const value = { plan: this.catalog.effective(subscribedPlanId, status), subscribedPlanId, status };
    if (generation === this.invalidations) this.cache.set(tenantId, { value, at: Date.now() });
    return value;
  }

  /** Changes a tenant's plan (billing webhook, operator CLI); audited in the same transaction. */
  async change(
    tenantId: string,
    planId: string,
    status: SubscriptionStatus,
    actor: Actor,
    request?: RequestMeta,
    reference?: string,
    outer?: TransactionContext,
  ): Promise<void> {
    this.catalog.get(planId); // unknown plan → validation error, never a silent default
    const run = <T>(work: (tx: TransactionContext) => Promise<T>) => (outer ? work(outer) : this.uow.run(work));
    await run(async (tx) => {
      const before = await this.subscriptions.set({ tenantId, planId, status }, tx);
      // The month's included credits follow the plan up (CreditsService.topUpMonthlyGrant). Before the
      // audit event: that is the transaction's last write (AuditRecorder).
      await this.credits.topUpMonthlyGrant(tenantId, this.catalog.effective(planId, status), monthWindow(this.clock.now()).start, actor, tx);
      await this.audit.record(
        {
          tenantId,
          actor,
          action: 'plan.changed',
          target: { type: 'tenant', id: tenantId },
          request,
          metadata: { plan: planId, status, previous_plan: before?.planId ?? null, previous_status: before?.status ?? null, reference: reference ?? null },
        },
        tx,
      );
    });
    // Here and on every replica, once committed: inside an `outer` transaction the caller announces the
    // change after its commit (a replica reading in between would keep the old plan for up to TTL_MS).
    if (!outer) await this.announce(tenantId);
  }

  /** Tells every replica (this one included) that the tenant's plan changed: call after the change committed. */
  announce(tenantId: string): Promise<void> {
    return this.bus.publish({ kind: 'tenant_plan', id: tenantId });
  }
}
