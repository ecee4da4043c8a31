import { Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import { TenantCache } from '../../shared/domain/tenant-cache';
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
  /** Each tenant's plan, dropped on every replica when it changes (TenantCache: a read racing a change is not kept). */
  private readonly plans: TenantCache<TenantPlan>;

  constructor(
    private readonly subscriptions: SubscriptionRepository,
    private readonly uow: UnitOfWork,
    private readonly audit: AuditRecorder,
    config: AppConfig,
    private readonly bus: InvalidationBus,
    private readonly credits: CreditsService,
    private readonly clock: Clock,
  ) {
    this.plans = new TenantCache(bus, 'tenant_plan', TTL_MS, (tenantId) => this.readPlan(tenantId));
    this.catalog = PlanCatalog.fromOverrides(config.plansFile ? JSON.parse(readFileSync(config.plansFile, 'utf8')) : null);
  }

  planFor(tenantId: string): Promise<TenantPlan> {
    return this.plans.get(tenantId);
  }

  private async readPlan(tenantId: string): Promise<TenantPlan> {
    const sub = await this.subscriptions.find(tenantId);
    const subscribedPlanId = sub?.planId ?? 'free';
    const status = sub?.status ?? 'active';
    return { plan: this.catalog.effective(subscribedPlanId, status), subscribedPlanId, status };
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
