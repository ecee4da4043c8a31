import { Inject, Injectable, LoggerService } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import pino, { DestinationStream, Level, LevelWithSilent, Logger } from 'pino';
import type { AgentPrincipal } from '../auth/agent-principal';
import type { Principal } from '../auth/principal';
import { AppConfig } from '../config/app-config';

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
 * The process's one pino logger: JSON lines, secrets redacted, pretty output
 * only in development and only when pino-pretty is installed (a devDependency).
 *
 * Lines go to stdout with pino's default synchronous writes: writing them in
 * 4 KB blocks (sonic-boom minLength) made no measurable difference in the
 * bench, so the simpler behaviour, which loses nothing on a crash, stays.
 */
export function createRootLogger(config: AppConfig, destination: LogDestination): Logger {
  const pretty = !destination.stream && config.nodeEnv === 'development' && prettyAvailable();
  const options = {
    level: pinoLevel(config.logLevel),
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l', messageFormat: '{if context}[{context}] {end}{msg}', ignore: 'pid,hostname,context' } } }
      : {}),
  };
  return destination.stream ? pino(options, destination.stream) : pino(options);
}

/** Injection token of the root pino logger (see ObservabilityModule). */
export const ROOT_LOGGER = Symbol('tollgate.rootLogger');

/**
 * O4: one JSON line per request, written when the response ends, with request
 * id (Fastify's, which honours X-Request-Id), route template, tenant, key id,
 * user, status and latency. Only the headers of LOGGED_HEADERS are written:
 * secrets cannot reach the line, so it skips the redaction pass (which cost
 * ~5 µs a line even when there is nothing to redact).
 *
 * Written by hand from a Fastify hook instead of nestjs-pino/pino-http: those
 * run as a Nest middleware (through @fastify/middie), build a child logger per
 * request and keep it in an AsyncLocalStorage, which turns on promise hooks for
 * every promise of every request. Measured: /health/live 183 → 23 µs of CPU
 * per request, GET /api/v1/mcp/tools 407 → 107 µs (bench/README.md).
 */
@Injectable()
export class RequestLog {
  private readonly logger: Logger;

  constructor(@Inject(ROOT_LOGGER) root: Logger) {
    // Built from an allow-list of fields: nothing to redact.
    this.logger = root.child({}, { redact: { paths: [] } });
  }

  /** `route`: the route template (`routeOf`), or `unmatched`. */
  completed(request: FastifyRequest, route: string, status: number, latencyMs: number, aborted: boolean): void {
    const level: Level = status >= 500 ? 'error' : status >= 400 || aborted ? 'warn' : 'info';
    if (!this.logger.isLevelEnabled(level)) return;
    const path = request.url.split('?', 1)[0];
    if (level === 'info' && QUIET_ROUTES.has(path)) return;
    const fields = request as FastifyRequest & { agent?: AgentPrincipal; principal?: Principal };
    this.logger[level](
      {
        request_id: String(request.id),
        route,
        tenant_id: fields.agent?.tenantId ?? fields.principal?.tenantId,
        key_id: fields.agent?.keyId,
        user: fields.principal?.sub,
        req: { id: String(request.id), method: request.method, url: loggedUrl(request.url, path), remote_address: request.ip, headers: loggedHeaders(request.headers) },
        res: { status },
        latency_ms: Math.round(latencyMs * 1000) / 1000,
        ...(aborted ? { aborted: true } : {}),
      },
      aborted ? 'request aborted' : 'request completed',
    );
  }
}

/** Request headers worth a log line; credentials (authorization, x-api-key, cookie, signatures) are never among them. */
export const LOGGED_HEADERS = ['user-agent', 'content-type', 'content-length', 'mcp-protocol-version', 'x-forwarded-for'] as const;

function loggedHeaders(headers: FastifyRequest['headers']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of LOGGED_HEADERS) if (headers[name] !== undefined) out[name] = headers[name];
  return out;
}

/** Nest's logger (bootstrap lines, warnings, `new Logger(ctx)` in services) on the same pino logger. */
@Injectable()
export class PinoNestLogger implements LoggerService {
  constructor(@Inject(ROOT_LOGGER) private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** Nest passes the context last; `error(message, stack, context)` puts a stack before it. */
  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const rest = [...params];
    const context = rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = context ? { context } : {};
    if (level === 'error' && typeof rest[0] === 'string') fields.stack = rest.shift();
    if (message instanceof Error) {
      fields.err = message;
      this.logger[level](fields, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level]({ ...fields, ...(message as object) });
    } else {
      this.logger[level](fields, String(message));
    }
  }
}

function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * The request's path, with the names of its query parameters but not their
 * values: a client that puts its key in the query string (`?api_key=…`, a
 * common mistake) must not have it written to the log.
 */
export function loggedUrl(url: string, path: string): string {
  if (url.length === path.length) return url;
  const query = url.slice(path.length + 1);
  return `${path}?${query
    .split('&')
    .map((pair) => `${pair.split('=', 1)[0]}=[redacted]`)
    .join('&')}`;
}
