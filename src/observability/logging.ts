import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Params } from 'nestjs-pino';
import type { DestinationStream, Level, LevelWithSilent } from 'pino';
import type { AgentPrincipal } from '../auth/agent-principal';
import type { Principal } from '../auth/principal';
import { AppConfig } from '../config/app-config';
import { FASTIFY_REQUEST, InstrumentedMessage } from './http-instrumentation';

/**
 * Where log lines go: stdout unless a stream is given (tests capture lines
 * through an override of this provider).
 */
export class LogDestination {
  constructor(readonly stream: DestinationStream | null = null) {}
}

/** LOG_LEVEL speaks Nest's names; pino's differ for two of them. */
export function pinoLevel(level: string): LevelWithSilent {
  const map: Record<string, LevelWithSilent> = { fatal: 'fatal', error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace', silent: 'silent' };
  return map[level] ?? 'info';
}

/** Never logged, whatever serializer or caller puts them in a line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.headers["tollgate-signature"]',
  'res.headers["set-cookie"]',
  'token',
  '*.token',
  '*.*.token',
  'secret',
  '*.secret',
];

const QUIET_ROUTES = new Set(['/health/live', '/health/ready', '/metrics']);

/**
 * nestjs-pino (pino-http) options: one JSON line per request with request id
 * (Fastify's, which honours X-Request-Id), route template, tenant, key id,
 * status and latency; secrets redacted. Pretty output only in development and
 * only when pino-pretty is installed (a devDependency).
 */
export function loggerParams(config: AppConfig, destination: LogDestination): Params {
  const level = pinoLevel(config.logLevel);
  const pretty = !destination.stream && config.nodeEnv === 'development' && prettyAvailable();
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    genReqId: (req: IncomingMessage) => (req as IncomingMessage & { id?: string }).id ?? randomUUID(),
    customAttributeKeys: { responseTime: 'latency_ms' },
    customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error): Level =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    customProps: (req: IncomingMessage) => requestFields(req),
    autoLogging: { ignore: (req: IncomingMessage) => QUIET_ROUTES.has((req.url ?? '').split('?')[0]) },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string; headers: Record<string, unknown> }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remote_address: req.remoteAddress,
        headers: req.headers,
      }),
      res: (res: { statusCode: number }) => ({ status: res.statusCode }),
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l', messageFormat: '{if context}[{context}] {end}{msg}', ignore: 'pid,hostname,context' } } } : {}),
  };
  return {
    pinoHttp: destination.stream ? [options, destination.stream] : options,
    // Nest's own lines (bootstrap, warnings) go through the same logger.
    renameContext: 'context',
  } as Params;
}

/** Who and what a request was, as far as the guards learned it; never a secret. */
function requestFields(req: IncomingMessage): Record<string, unknown> {
  const fastify = (req as InstrumentedMessage)[FASTIFY_REQUEST] as
    | (InstrumentedMessage[typeof FASTIFY_REQUEST] & { agent?: AgentPrincipal; principal?: Principal })
    | undefined;
  const agent = fastify?.agent;
  const principal = fastify?.principal;
  return {
    request_id: fastify ? String(fastify.id) : (req as IncomingMessage & { id?: string }).id,
    route: fastify?.routeOptions?.url ?? 'unmatched',
    tenant_id: agent?.tenantId ?? principal?.tenantId,
    key_id: agent?.keyId,
    user: principal?.sub,
  };
}

function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
