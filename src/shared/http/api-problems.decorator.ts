import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity, getSchemaPath } from '@nestjs/swagger';
import type { ProblemCode } from '../domain/domain-error';
import { ProblemDto } from './problem.dto';
import { PROBLEM_STATUS, PROBLEM_TITLES, problemType } from './problem-status';

/** Security scheme names of the OpenAPI document (see openapi.ts). */
export const MANAGEMENT_JWT = 'management-jwt';
export const AGENT_API_KEY = 'agent-api-key';
export const AGENT_BEARER = 'agent-bearer';

/** One example detail per code: what a caller reads in the docs (exhaustive by type). */
export const PROBLEM_EXAMPLES: Record<ProblemCode, string> = {
  missing_key: 'Send an API key in the X-API-Key header or as "Authorization: Bearer <key>".',
  invalid_key: 'The API key is not valid.',
  expired_key: 'The API key has expired.',
  disabled_key: 'The API key is disabled.',
  revoked_key: 'The API key has been revoked.',
  unauthenticated: 'Send a management JWT as "Authorization: Bearer <token>".',
  forbidden_resource: 'The key\'s scope does not allow the tool "github__delete_repo".',
  insufficient_scope: 'The token lacks the scope this operation needs.',
  forbidden: 'This operation requires one of the roles: admin.',
  scope_too_wide: "The requested scope is wider than the creator's own.",
  key_limit_reached: 'The limit of 10 API keys has been reached.',
  insufficient_credits: 'This call costs 5 credits and the balance is 2.',
  not_found: 'API key was not found.',
  duplicate_name: 'An API key named "ci-agent" already exists.',
  invalid_state: 'A revoked API key cannot be changed.',
  malformed_request: 'The body is not valid JSON.',
  payload_too_large: 'The body exceeds the size limit.',
  unsupported_media_type: 'Send the body as application/json.',
  validation_failed: 'The request body is invalid.',
  rate_limited: 'Rate limit of 60 requests per minute for this key (plan "free") exceeded; retry in 12 s.',
  quota_exceeded: 'The monthly quota of 1000 requests is used up.',
  internal_error: 'An unexpected error occurred. The request id identifies it in the server logs.',
  upstream_error: 'The upstream MCP server "github" failed: ECONNREFUSED',
  service_unavailable: 'The database is unavailable; retry shortly.',
  upstream_timeout: 'The upstream MCP server "github" did not answer within 30000 ms.',
};

const PROBLEMS = 'tollgate:problems';
/** @nestjs/swagger's metadata key for @ApiResponse (API_RESPONSE; not exported by the package). */
const API_RESPONSE = 'swagger/apiResponse';

type ResponseMap = Record<string, Record<string, unknown>>;

/**
 * Documents the problem+json refusals a route can give: one response per
 * status, one named example per code (`@ApiProblems('not_found', ...)`).
 * Repeated uses add up; on a class, every method of the class gets them, so
 * class-wide (auth) and route-specific codes sharing a status are both listed.
 */
export function ApiProblems(...codes: ProblemCode[]): ClassDecorator & MethodDecorator {
  return ((target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (descriptor) {
      addProblems(descriptor.value as object, codes);
      return descriptor;
    }
    const proto = (target as { prototype: object }).prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor') continue;
      const method = Object.getOwnPropertyDescriptor(proto, name)?.value;
      if (typeof method === 'function') addProblems(method as object, codes);
    }
    return undefined;
  }) as ClassDecorator & MethodDecorator;
}

function addProblems(method: object, codes: ProblemCode[]): void {
  const all = new Set<ProblemCode>([...((Reflect.getMetadata(PROBLEMS, method) as ProblemCode[] | undefined) ?? []), ...codes]);
  Reflect.defineMetadata(PROBLEMS, [...all], method);
  const responses: ResponseMap = { ...((Reflect.getMetadata(API_RESPONSE, method) as ResponseMap | undefined) ?? {}) };
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of all) byStatus.set(PROBLEM_STATUS[code], [...(byStatus.get(PROBLEM_STATUS[code]) ?? []), code]);
  for (const [status, list] of byStatus) {
    responses[String(status)] = {
      description: list.map((c) => `\`${c}\`: ${PROBLEM_TITLES[c]}`).join('; '),
      content: {
        'application/problem+json': {
          schema: { $ref: getSchemaPath(ProblemDto) },
          examples: Object.fromEntries(list.map((c) => [c, { summary: PROBLEM_TITLES[c], value: problemExample(c) }])),
        },
      },
    };
  }
  Reflect.defineMetadata(API_RESPONSE, responses, method);
}

export function problemExample(code: ProblemCode): Record<string, unknown> {
  return {
    type: problemType(code),
    title: PROBLEM_TITLES[code],
    status: PROBLEM_STATUS[code],
    detail: PROBLEM_EXAMPLES[code],
    code,
    request_id: '6f1c2b1e-3d4a-4d7e-9b8f-0a1b2c3d4e5f',
    ...(code === 'validation_failed' ? { errors: [{ field: 'name', message: 'name must be longer than or equal to 1 characters' }] } : {}),
  };
}

/** Refusals any request with a JSON body can get before the handler runs. */
export const BODY_PROBLEMS: ProblemCode[] = ['malformed_request', 'payload_too_large', 'unsupported_media_type', 'validation_failed'];

/** Management routes: JWT bearer, role check. */
export function ApiManagementAuth(): ClassDecorator & MethodDecorator {
  return applyDecorators(ApiBearerAuth(MANAGEMENT_JWT), ApiProblems('unauthenticated', 'forbidden', 'internal_error', 'service_unavailable'));
}

/** Agent routes: API key (X-API-Key or Bearer; an OAuth access token may be refused with insufficient_scope), per-key rate limit. */
export function ApiAgentAuth(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiSecurity(AGENT_API_KEY),
    ApiBearerAuth(AGENT_BEARER),
    ApiProblems('missing_key', 'invalid_key', 'expired_key', 'disabled_key', 'revoked_key', 'insufficient_scope', 'rate_limited', 'internal_error', 'service_unavailable'),
  );
}
