import { Module } from '@nestjs/common';
import { AlertsModule } from './alerts/alerts.module';
import { APIKeysModule } from './api-keys/api-keys.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { AppConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { McpModule } from './mcp/mcp.module';
import { OAuthModule } from './oauth/oauth.module';
import { ObservabilityModule } from './observability/observability.module';
import { PlansModule } from './plans/plans.module';
import { RedisModule } from './redis/redis.module';
import { UsageModule } from './usage/usage.module';
import { VerificationModule } from './verification/verification.module';
import { SharedModule } from './shared/shared.module';
import { TenantsModule } from './tenants/tenants.module';

@Module({
  imports: [AppConfigModule, SharedModule, DatabaseModule, RedisModule, PlansModule, UsageModule, TenantsModule, AuditModule, AuthModule, APIKeysModule, VerificationModule, OAuthModule, McpModule, AlertsModule, HealthModule, ObservabilityModule],
})
export class AppModule {}
