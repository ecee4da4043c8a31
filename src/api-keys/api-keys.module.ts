import { Module } from '@nestjs/common';
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
import { TypeOrmAPIKeyRepository } from './infrastructure/typeorm-api-key.repository';

/** API keys: lifecycle (K1–K7), verification of agents' keys (A3) and scopes (A4). K8 is VerificationModule. */
@Module({
  imports: [AuthModule, AuditModule, TenantsModule, PlansModule],
  controllers: [APIKeysController],
  providers: [
    APIKeysService,
    APIKeySecrets,
    KeyVerifier,
    KeyCache,
    APIKeyAuthGuard,
    { provide: APIKeyRepository, useClass: TypeOrmAPIKeyRepository },
  ],
  exports: [APIKeysService, KeyVerifier, APIKeyAuthGuard],
})
export class APIKeysModule {}
