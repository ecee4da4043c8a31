import type { LoggerService } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { InFlightRequests } from './http-instrumentation';

export interface GracefulShutdownOptions {
  /** How long in-flight requests may run (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number;
  logger: LoggerService;
  /** Past the deadline: make running calls give up (e.g. close upstream sessions), so they release what they admitted. */
  abort?: () => Promise<void>;
  /** Runs once nothing is in flight, before the app closes (e.g. the usage buffer's flush). */
  beforeClose?: () => Promise<void>;
}

/** After a cut, how long handlers get to release or meter what they admitted. */
const SETTLE_MS = 5_000;

/**
 * SIGTERM, in order:
 * 1. stop accepting: the listening socket closes, readiness turns 503, idle
 *    keep-alive connections close, every later response says `Connection: close`;
 * 2. in-flight requests (MCP calls included) finish, up to the deadline;
 * 3. `beforeClose` (flush what was counted), then `app.close()`: module
 *    hooks run (usage buffer's final flush, upstream sessions, Redis, the pool).
 * Upstream sessions are only closed in step 3, so no call in flight loses its
 * upstream. Past the deadline the remaining connections are cut and `abort`
 * makes the running calls fail; the pipeline then releases their quota and
 * refunds their credits while PostgreSQL is still open (bounded by SETTLE_MS).
 */
export async function closeGracefully(app: NestFastifyApplication, opts: GracefulShutdownOptions): Promise<void> {
  const inFlight = app.get(InFlightRequests);
  inFlight.startDraining();
  const server = app.getHttpAdapter().getInstance().server;
  // Fastify's close() (inside app.close()) calls server.close() again and ignores ERR_SERVER_NOT_RUNNING.
  server.close(() => undefined);
  server.closeIdleConnections();
  const pending = inFlight.size;
  if (pending > 0) opts.logger.log?.(`Waiting up to ${opts.timeoutMs} ms for ${pending} in-flight request(s)`, 'Shutdown');
  const idle = await inFlight.idle(opts.timeoutMs);
  if (!idle) {
    opts.logger.warn(`${inFlight.size} request(s) still running after ${opts.timeoutMs} ms: closing their connections`, 'Shutdown');
    server.closeAllConnections();
    await opts.abort?.().catch((err: Error) => opts.logger.warn(`abort step failed: ${err.message}`, 'Shutdown'));
  }
  if (!(await inFlight.handlersIdle(SETTLE_MS))) {
    opts.logger.warn(`${inFlight.handlersRunning} handler(s) still running: closing anyway`, 'Shutdown');
  }
  // A failed flush is retried by the usage buffer's own shutdown hook inside app.close().
  await opts.beforeClose?.().catch((err: Error) => opts.logger.warn(`before-close step failed: ${err.message}`, 'Shutdown'));
  await app.close();
}
