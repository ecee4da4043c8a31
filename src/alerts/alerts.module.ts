import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { AlertsService } from './application/alerts.service';
import { AlertRepository, AlertSender, TenantQuotas } from './domain/alerts';
import { HostResolver } from './domain/host-resolver';
import { AlertsController } from './http/alerts.controller';
import { DnsHostResolver } from './infrastructure/dns-host.resolver';
import { HttpAlertSender } from './infrastructure/http-alert.sender';
import { PlanTenantQuotas } from './infrastructure/plan-tenant-quotas';
import { TypeOrmAlertRepository } from './infrastructure/typeorm-alert.repository';

/** Signed outbound alert webhooks (P6). */
@Module({
  imports: [AuditModule, AuthModule],
  controllers: [AlertsController],
  providers: [
    AlertsService,
    { provide: AlertRepository, useClass: TypeOrmAlertRepository },
    { provide: AlertSender, useClass: HttpAlertSender },
    { provide: HostResolver, useClass: DnsHostResolver },
    { provide: TenantQuotas, useClass: PlanTenantQuotas },
  ],
  exports: [AlertsService],
})
export class AlertsModule {}
