import { Module } from '@nestjs/common';
import { APIKeysModule } from '../api-keys/api-keys.module';
import { AuthModule } from '../auth/auth.module';
import { PlansModule } from '../plans/plans.module';
import { UsageModule } from '../usage/usage.module';
import { VerifyKeyService } from './application/verify-key.service';
import { VerifyController } from './http/verify.controller';

/**
 * K8: key verification for other backends (`POST /api/v1/keys/verify`). Its own
 * module because a charged verification (`cost`) spans API keys, plans
 * (admission) and usage, and usage already depends on API keys.
 */
@Module({
  imports: [APIKeysModule, AuthModule, PlansModule, UsageModule],
  controllers: [VerifyController],
  providers: [VerifyKeyService],
})
export class VerificationModule {}
