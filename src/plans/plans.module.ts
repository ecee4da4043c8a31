import { KeyRateLimiter } from './application/key-rate-limiter';
import { AnonymousThrottlerGuard } from './http/anonymous-throttler.guard';
import { Module, OnModuleInit } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { AlertsModule } from '../alerts/alerts.module';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { PrometheusMetrics } from '../observability/prometheus-metrics';
import { RedisConnection } from '../redis/redis.module';
import { BillingWebhookService } from './application/billing-webhook.service';
import { CallAdmission } from './application/call-admission.service';
import { CreditsService } from './application/credits.service';
import { SubscriptionsService } from './application/subscriptions.service';
import { AdmissionStore, BillingEventRepository, CreditLedgerRepository, QuotaCounterRepository, SubscriptionRepository, ToolPriceRepository } from './domain/billing.repositories';
import { AgentThrottlerGuard } from './http/agent-throttler.guard';
import { BillingWebhookController } from './http/billing-webhook.controller';
import { CreditsController, PlansController } from './http/plans.controller';
import { AuthFailureLimiter } from './infrastructure/auth-failure-limiter';
import { MemoryThrottlerStorage } from './infrastructure/memory-throttler.storage';
import { RedisThrottlerStorage } from './infrastructure/redis-throttler.storage';
import { ResilientThrottlerStorage } from './infrastructure/resilient-throttler.storage';
import {
  PostgresAdmissionStore,
  TypeOrmBillingEventRepository,
  TypeOrmCreditLedgerRepository,
  TypeOrmQuotaCounterRepository,
  TypeOrmSubscriptionRepository,
  TypeOrmToolPriceRepository,
} from './infrastructure/typeorm-billing.repositories';

/** Plans, rate limits, quotas and credits (P1–P4). */
@Module({
  imports: [
    AlertsModule,
    AuditModule,
    AuthModule,
    ThrottlerModule.forRootAsync({
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection) => ({
        // Limits are the plan's, resolved per request by AgentThrottlerGuard, which evaluates the
        // windows in the base guard's order (sorted by ttl: minute → tool_call → hour) in one storage call.
        throttlers: [
          { name: 'minute', ttl: 60_000, limit: 60 },
          { name: 'hour', ttl: 3_600_000, limit: 1_000 },
          // Stricter window for the expensive route (tool calls), when the plan sets one.
          { name: 'tool_call', ttl: 60_000, limit: 30 },
        ],
        // Both implement MultiWindowLimiter (all of a request's windows in one call: one Redis round trip).
        storage: redis.client ? new ResilientThrottlerStorage(new RedisThrottlerStorage(redis.client)) : new MemoryThrottlerStorage(),
      }),
    }),
  ],
  controllers: [PlansController, CreditsController, BillingWebhookController],
  providers: [
    SubscriptionsService,
    CreditsService,
    CallAdmission,
    AgentThrottlerGuard,
    { provide: KeyRateLimiter, useExisting: AgentThrottlerGuard },
    AnonymousThrottlerGuard,
    AuthFailureLimiter,
    BillingWebhookService,
    { provide: BillingEventRepository, useClass: TypeOrmBillingEventRepository },
    { provide: AdmissionStore, useClass: PostgresAdmissionStore },
    { provide: SubscriptionRepository, useClass: TypeOrmSubscriptionRepository },
    { provide: QuotaCounterRepository, useClass: TypeOrmQuotaCounterRepository },
    { provide: CreditLedgerRepository, useClass: TypeOrmCreditLedgerRepository },
    { provide: ToolPriceRepository, useClass: TypeOrmToolPriceRepository },
  ],
  exports: [SubscriptionsService, CreditsService, CallAdmission, AgentThrottlerGuard, KeyRateLimiter, AnonymousThrottlerGuard, AuthFailureLimiter],
})
export class PlansModule implements OnModuleInit {
  constructor(
    private readonly metrics: PrometheusMetrics,
    private readonly admissions: AdmissionStore,
  ) {}

  onModuleInit(): void {
    if (!(this.admissions instanceof PostgresAdmissionStore)) return;
    const { batcher } = this.admissions;
    // calls ÷ statements = the mean batch size: how much a tenant's concurrent calls share their admission.
    this.metrics.counterFrom('tollgate_admission_statements_total', 'Admission statements sent to PostgreSQL (one per batch of a tenant\'s calls).', () => batcher.batches);
    this.metrics.counterFrom('tollgate_admission_calls_total', 'Tool calls decided by those statements.', () => batcher.items);
  }
}
