import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { SubscriptionsService } from '../../plans/application/subscriptions.service';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import { TenantQuotas } from '../domain/alerts';

/**
 * TenantQuotas from the plans module. PlansModule imports AlertsModule (the
 * admission raises alerts), so SubscriptionsService cannot be injected here
 * without a module cycle: it is looked up once, on first use, when every
 * module is up. Plan changes come from the `tenant_plan` invalidations that
 * SubscriptionsService publishes after each change (on every replica).
 */
@Injectable()
export class PlanTenantQuotas extends TenantQuotas {
  private subscriptions: SubscriptionsService | null = null;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly bus: InvalidationBus,
  ) {
    super();
  }

  async limitsOf(tenantId: string): Promise<{ plan: string; requests: number; tokens: number }> {
    this.subscriptions ??= this.moduleRef.get<SubscriptionsService>(SubscriptionsService, { strict: false });
    const { plan } = await this.subscriptions.planFor(tenantId);
    return { plan: plan.id, requests: plan.quotas.requestsPerMonth, tokens: plan.quotas.tokensPerMonth };
  }

  onPlanChanged(handler: (tenantId: string | null) => void): void {
    this.bus.subscribe('tenant_plan', handler);
  }
}
