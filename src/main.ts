import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { join } from 'node:path';
import { AppModule } from './app.module';
import { configureApp, createFastifyAdapter } from './app.setup';
import { DevTokenIssuer } from './auth/dev-token.issuer';
import { AppConfig } from './config/app-config';
import { InvalidConfigurationError } from './config/env.validation';
import { EmbeddedPostgres } from './database/embedded-postgres';

async function bootstrap(): Promise<void> {
  const logger = new Logger('Tollgate');
  let config: AppConfig;
  try {
    config = AppConfig.fromEnvironment();
  } catch (err) {
    if (err instanceof InvalidConfigurationError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  let embedded: EmbeddedPostgres | null = null;
  if (!config.databaseUrl) {
    embedded = new EmbeddedPostgres(config.dataDir, (line) => logger.debug(line));
    logger.log(`DATABASE_URL is unset: starting the embedded PostgreSQL in ${join(config.dataDir, 'pg')}`);
    process.env.DATABASE_URL = await embedded.start();
  }

  const app = await NestFactory.create<NestFastifyApplication>(AppModule, createFastifyAdapter(config), {
    logger: config.logLevel === 'silent' ? false : levels(config.logLevel),
  });
  await configureApp(app);
  await app.listen({ port: config.port, host: config.host });
  logger.log(`Tollgate listening on http://${config.host}:${config.port} (public URL ${config.publicUrl})`);

  const devTokens = app.get(DevTokenIssuer);
  if (devTokens.available) printDevelopmentBanner(config, devTokens.issue());

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: closing`);
    try {
      await app.close();
    } finally {
      await embedded?.stop();
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function levels(level: string): ('fatal' | 'error' | 'warn' | 'log' | 'debug' | 'verbose')[] {
  const order = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
  return order.slice(0, order.indexOf(level as (typeof order)[number]) + 1);
}

/** The newcomer's next step, printed on start in development (never in production). */
function printDevelopmentBanner(config: AppConfig, token: string): void {
  const base = config.publicUrl;
  process.stdout.write(
    [
      '',
      'Development admin token (tenant "demo", role admin, valid 12 h; signed with the dev secret in DATA_DIR):',
      '',
      `  export TOLLGATE_TOKEN=${token}`,
      '',
      'Create an API key:',
      '',
      `  curl -s -X POST ${base}/api/v1/api-keys \\`,
      '    -H "Authorization: Bearer $TOLLGATE_TOKEN" -H "Content-Type: application/json" \\',
      `    -d '{"name":"my-first-key","permission_scope":{"mcp_tool_ids":["*"]}}'`,
      '',
    ].join('\n') + '\n',
  );
}

void bootstrap().catch((err) => {
  process.stderr.write(`Tollgate failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
