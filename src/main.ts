import 'reflect-metadata';
import { Logger, OnModuleDestroy } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { join } from 'node:path';
import { AppModule } from './app.module';
import { configureApp, createFastifyAdapter } from './app.setup';
import { DevTokenIssuer } from './auth/dev-token.issuer';
import { AppConfig } from './config/app-config';
import { InvalidConfigurationError } from './config/env.validation';
import { EmbeddedPostgres } from './database/embedded-postgres';
import { bootstrapDemo, DemoSetup } from './demo/demo-bootstrap';
import { UpstreamConnector } from './mcp/domain/upstream.repository';
import { closeGracefully } from './observability/graceful-shutdown';
import { PinoNestLogger } from './observability/logging';
import { UsageBuffer } from './usage/application/usage-buffer';

/** Seams for tools that start Tollgate as `npm start` does (the bench adds its baseline route). */
export interface BootstrapOptions {
  /** Runs once the app is configured, before it listens: routes added to the Fastify instance here are served. */
  beforeListen?: (app: NestFastifyApplication) => void | Promise<void>;
}

export async function bootstrap(options: BootstrapOptions = {}): Promise<void> {
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

  Logger.overrideLogger(config.logLevel === 'silent' ? false : levels(config.logLevel));
  let embedded: EmbeddedPostgres | null = null;
  if (!config.databaseUrl) {
    embedded = new EmbeddedPostgres(config.dataDir, (line) => logger.debug(line));
    logger.log(`DATABASE_URL is unset: starting the embedded PostgreSQL in ${join(config.dataDir, 'pg')}`);
    process.env.DATABASE_URL = await embedded.start();
  }

  const app = await NestFactory.create<NestFastifyApplication>(AppModule, createFastifyAdapter(config), {
    logger: config.logLevel === 'silent' ? false : levels(config.logLevel),
    // Start-up lines wait for the pino logger (JSON in production, pretty in development).
    bufferLogs: config.logLevel !== 'silent',
    // The billing webhook's HMAC is computed over the exact bytes received.
    rawBody: true,
  });
  if (config.logLevel !== 'silent') app.useLogger(app.get(PinoNestLogger));
  await configureApp(app);
  await options.beforeListen?.(app);
  await app.listen({ port: config.port, host: config.host });
  logger.log(`Tollgate listening on http://${config.host}:${config.port} (public URL ${config.publicUrl})`);

  const devTokens = app.get(DevTokenIssuer);
  let demo: DemoSetup | null = null;
  if (config.demo) {
    try {
      demo = await bootstrapDemo(app);
    } catch (err) {
      logger.warn(`The demo upstream could not be set up: ${(err as Error).message}`);
    }
  }
  if (devTokens.available) printDevelopmentBanner(config, devTokens.issue(), demo);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) {
      if (signal === 'SIGINT') process.exit(130); // a second Ctrl-C does not wait
      return;
    }
    closing = true;
    logger.log(`${signal} received: draining (up to ${config.shutdownTimeoutMs} ms), then closing`);
    let code = 0;
    try {
      await closeGracefully(app, {
        timeoutMs: config.shutdownTimeoutMs,
        logger,
        // Past the deadline: running tool calls fail fast (and are released) instead of outliving the pool.
        abort: async () => (app.get(UpstreamConnector) as Partial<OnModuleDestroy>).onModuleDestroy?.(),
        // Usage counted by the calls that just finished is written before the pool closes.
        beforeClose: () => app.get(UsageBuffer).flush(),
      });
      await demo?.stop();
    } catch (err) {
      code = 1;
      process.stderr.write(`Shutdown failed: ${(err as Error).stack ?? String(err)}\n`);
    } finally {
      await embedded?.stop();
      process.exit(code);
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
function printDevelopmentBanner(config: AppConfig, token: string, demo: DemoSetup | null): void {
  const base = config.publicUrl;
  const mcp = demo
    ? [
        `A real upstream MCP server (server-everything) runs at ${demo.upstreamUrl}, registered as "everything" for tenant "demo".`,
        'Demo agent key (scope everything__*; a new one each start, the previous is revoked):',
        '',
        `  export TOLLGATE_KEY=${demo.keyToken}`,
        '',
        'List the tools through Tollgate with an MCP client (MCP Inspector CLI):',
        '',
        `  npx -y @modelcontextprotocol/inspector@2 --cli ${base}/mcp --transport http --method tools/list --header "X-API-Key: $TOLLGATE_KEY"`,
        '',
        'or without MCP, through the REST mirror:',
        '',
        `  curl -s ${base}/api/v1/mcp/tools -H "X-API-Key: $TOLLGATE_KEY"`,
        '',
      ]
    : [];
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
      ...mcp,
    ].join('\n') + '\n',
  );
}

if (require.main === module) {
  void bootstrap().catch((err) => {
    process.stderr.write(`Tollgate failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
