import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, ProblemCode } from '../domain/domain-error';
import { HttpProblem } from './http-problem';
import { DATABASE_RETRY_AFTER_S, isDatabaseUnavailable, isUnstorableText } from './database-errors';
import { PROBLEM_STATUS, PROBLEM_TITLES, problemType } from './problem-status';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  instance?: string;
  request_id?: string;
  [extra: string]: unknown;
}

/** Fallback codes for framework HttpExceptions that carry no product code. */
const STATUS_CODES: Partial<Record<number, ProblemCode>> = {
  400: 'malformed_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'not_found',
  409: 'duplicate_name',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'validation_failed',
  429: 'rate_limited',
  503: 'service_unavailable',
};

/**
 * The one error envelope: every error leaves as application/problem+json with
 * a stable `code` (RFC 9457 + PRODUCT.md codes). Unknown errors are a 500
 * with no detail: internals and secrets never reach a body.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemDetails');

  /** `observe` sees every problem sent (metrics); it must not throw. */
  constructor(private readonly observe?: (exception: unknown, problem: ProblemBody) => void) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const request = ctx.getRequest<FastifyRequest>();
    const problem = this.toProblem(exception);
    this.observe?.(exception, problem);
    problem.instance = request?.url?.split('?')[0];
    if (request?.id) problem.request_id = String(request.id);
    if (problem.status >= 500 && problem.code === 'internal_error') {
      this.logger.error(
        `Unhandled error on ${request?.method} ${problem.instance}: ${(exception as Error)?.stack ?? String(exception)}`,
      );
    }
    const headers = exception instanceof HttpProblem ? exception.headers : undefined;
    sendProblem(reply, problem, isDatabaseUnavailable(exception) ? { 'Retry-After': String(DATABASE_RETRY_AFTER_S) } : withRetryAfter(problem, headers));
  }

  toProblem(exception: unknown): ProblemBody {
    if (exception instanceof DomainError) {
      const status = PROBLEM_STATUS[exception.code];
      return {
        type: problemType(exception.code),
        title: PROBLEM_TITLES[exception.code],
        status,
        detail: exception.message,
        code: exception.code,
        ...(exception.details ?? {}),
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = STATUS_CODES[status] ?? (status >= 500 ? 'internal_error' : 'malformed_request');
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : typeof (response as { message?: unknown }).message === 'string'
            ? String((response as { message: string }).message)
            : exception.message;
      return { type: problemType(code), title: PROBLEM_TITLES[code], status, detail: message, code };
    }
    const fastifyStatus = fastifyErrorStatus(exception);
    if (fastifyStatus) {
      const code = STATUS_CODES[fastifyStatus] ?? 'malformed_request';
      return {
        type: problemType(code),
        title: PROBLEM_TITLES[code],
        status: fastifyStatus,
        detail: fastifyDetail(exception as { code?: string; message?: string }),
        code,
      };
    }
    if (isUnstorableText(exception)) {
      return {
        type: problemType('malformed_request'),
        title: PROBLEM_TITLES.malformed_request,
        status: HttpStatus.BAD_REQUEST,
        detail: 'The request contains characters that cannot be stored (such as U+0000).',
        code: 'malformed_request',
      };
    }
    if (isDatabaseUnavailable(exception)) {
      // Not the caller's fault and worth retrying (issue 8 §3); catch() adds Retry-After.
      return {
        type: problemType('service_unavailable'),
        title: PROBLEM_TITLES.service_unavailable,
        status: HttpStatus.SERVICE_UNAVAILABLE,
        detail: 'The database is unavailable; retry shortly.',
        code: 'service_unavailable',
      };
    }
    return {
      type: problemType('internal_error'),
      title: PROBLEM_TITLES.internal_error,
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      detail: 'An unexpected error occurred. The request id identifies it in the server logs.',
      code: 'internal_error',
    };
  }
}

export function sendProblem(reply: FastifyReply, problem: ProblemBody, headers?: Record<string, string>): void {
  if (headers) for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  reply.status(problem.status).header('content-type', 'application/problem+json; charset=utf-8').send(problem);
}

/**
 * Fastify's `frameworkErrors`: refusals its router makes before Nest sees the
 * request (a malformed percent-encoding, a path parameter longer than
 * maxParamLength) left as Fastify's own JSON; render them as problems too.
 */
export function sendFrameworkProblem(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const problem = new ProblemDetailsFilter().toProblem(error);
  problem.instance = request.url?.split('?')[0];
  if (request.id) problem.request_id = String(request.id);
  sendProblem(reply, problem, { 'X-Request-Id': String(request.id) });
}

/**
 * API.md: every 429 carries Retry-After; a refusal with a quota_info but no header of its own waits until reset_at.
 * A 503 whose details say `retry_after` (seconds) carries it as Retry-After too.
 */
function withRetryAfter(problem: ProblemBody, headers?: Record<string, string>): Record<string, string> | undefined {
  if (headers?.['Retry-After']) return headers;
  if (problem.status === 503 && typeof problem.retry_after === 'number') return { ...(headers ?? {}), 'Retry-After': String(Math.max(1, problem.retry_after)) };
  if (problem.status !== 429) return headers;
  const resetAt = Date.parse(String((problem.quota_info as { reset_at?: unknown } | undefined)?.reset_at));
  if (Number.isNaN(resetAt)) return headers;
  return { ...(headers ?? {}), 'Retry-After': String(Math.max(1, Math.ceil((resetAt - Date.now()) / 1000))) };
}

/** Fastify's own client errors (bad JSON, body too large, bad content type) carry a 4xx statusCode. */
function fastifyErrorStatus(e: unknown): number | null {
  const err = e as { statusCode?: unknown; code?: unknown };
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 && typeof err.code === 'string' && err.code.startsWith('FST_')) {
    return err.statusCode;
  }
  return null;
}

function fastifyDetail(e: { code?: string; message?: string }): string {
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is not valid JSON.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The body exceeds the size limit.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Send the body as application/json.';
    case 'FST_ERR_BAD_URL':
      return 'The URL is not valid (malformed percent-encoding?).';
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'A path parameter is too long.';
    default:
      return e.message ?? 'The request could not be read.';
  }
}
