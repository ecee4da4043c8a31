import { INestApplicationContext, LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { APIKeysService } from '../api-keys/application/api-keys.service';
import { AppModule } from '../app.module';
import { AuditLogService } from '../audit/application/audit-log.service';
import { CreditsService } from '../plans/application/credits.service';
import { SubscriptionsService } from '../plans/application/subscriptions.service';
import { TenantsService } from '../tenants/application/tenants.service';

/**
 * The app's services for CLI commands, from a Nest application context of the
 * whole AppModule: the same wiring as a replica (a smaller module would drift
 * from the app's), but no HTTP server. Loaded only by commands that need it,
 * so `--help`, usage errors and `token dev` start at once.
 */
export interface CliServices {
  tenants: TenantsService;
  keys: APIKeysService;
  subscriptions: SubscriptionsService;
  credits: CreditsService;
  audit: AuditLogService;
  close(): Promise<void>;
}

export async function openServices(logger: LoggerService): Promise<CliServices> {
  const app: INestApplicationContext = await NestFactory.createApplicationContext(AppModule, { logger, abortOnError: false });
  // strict: false — the CLI is not a module importing them; resolve each wherever it is provided.
  const get = <T>(type: new (...args: any[]) => T): T => app.get(type, { strict: false });
  return {
    tenants: get(TenantsService),
    keys: get(APIKeysService),
    subscriptions: get(SubscriptionsService),
    credits: get(CreditsService),
    audit: get(AuditLogService),
    close: () => app.close(),
  };
}
