import { Module } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { PlansModule } from '../plans/plans.module';
import { TenantsModule } from '../tenants/tenants.module';
import { APIKeySecrets } from './application/api-key-secrets';
import { APIKeysService } from './application/api-keys.service';
import { KeyCache } from './application/key-cache';
import { KeyVerifier } from './application/key-verifier';
import { APIKeyAuthGuard } from './http/api-key-auth.guard';
import { APIKeyRepository } from './domain/api-key.repository';
import { APIKeysController } from './http/api-keys.controller';
import { LeakReportsController } from './http/leak-reports.controller';
import { LeakReportsService } from './application/leak-reports.service';
import { LeakReporterKeys } from './application/leak-reporter-keys';
import { HttpLeakReporterKeys } from './infrastructure/http-leak-reporter-keys';
import { TypeOrmAPIKeyRepository } from './infrastructure/typeorm-api-key.repository';

/** API keys: lifecycle (K1–K7), leaked-key reports (K9), verification of agents' keys (A3) and scopes (A4). K8 is VerificationModule. */
@Module({
  imports: [AuthModule, AuditModule, AlertsModule, TenantsModule, PlansModule],
  controllers: [APIKeysController, LeakReportsController],
  providers: [
    APIKeysService,
    APIKeySecrets,
    KeyVerifier,
    KeyCache,
    APIKeyAuthGuard,
    LeakReportsService,
    { provide: LeakReporterKeys, useClass: HttpLeakReporterKeys },
    { provide: APIKeyRepository, useClass: TypeOrmAPIKeyRepository },
  ],
  exports: [APIKeysService, KeyVerifier, APIKeyAuthGuard],
})
export class APIKeysModule {}
