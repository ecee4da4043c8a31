import { HttpStatus } from '@nestjs/common';
import type { ProblemCode } from '../domain/domain-error';

/** Code → HTTP status. `Record` makes it exhaustive: a new code does not compile without a status. */
export const PROBLEM_STATUS: Record<ProblemCode, HttpStatus> = {
  missing_key: HttpStatus.UNAUTHORIZED,
  invalid_key: HttpStatus.UNAUTHORIZED,
  expired_key: HttpStatus.UNAUTHORIZED,
  disabled_key: HttpStatus.UNAUTHORIZED,
  revoked_key: HttpStatus.UNAUTHORIZED,
  unauthenticated: HttpStatus.UNAUTHORIZED,
  forbidden_resource: HttpStatus.FORBIDDEN,
  insufficient_scope: HttpStatus.FORBIDDEN,
  forbidden: HttpStatus.FORBIDDEN,
  scope_too_wide: HttpStatus.FORBIDDEN,
  key_limit_reached: HttpStatus.FORBIDDEN,
  insufficient_credits: HttpStatus.PAYMENT_REQUIRED,
  not_found: HttpStatus.NOT_FOUND,
  duplicate_name: HttpStatus.CONFLICT,
  invalid_state: HttpStatus.CONFLICT,
  malformed_request: HttpStatus.BAD_REQUEST,
  payload_too_large: HttpStatus.PAYLOAD_TOO_LARGE,
  unsupported_media_type: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  validation_failed: HttpStatus.UNPROCESSABLE_ENTITY,
  rate_limited: HttpStatus.TOO_MANY_REQUESTS,
  quota_exceeded: HttpStatus.TOO_MANY_REQUESTS,
  internal_error: HttpStatus.INTERNAL_SERVER_ERROR,
  upstream_error: HttpStatus.BAD_GATEWAY,
  service_unavailable: HttpStatus.SERVICE_UNAVAILABLE,
  upstream_timeout: HttpStatus.GATEWAY_TIMEOUT,
};

export const PROBLEM_TITLES: Record<ProblemCode, string> = {
  missing_key: 'Missing credentials',
  invalid_key: 'Invalid API key',
  expired_key: 'Expired API key',
  disabled_key: 'Disabled API key',
  revoked_key: 'Revoked API key',
  unauthenticated: 'Authentication required',
  forbidden_resource: 'Resource not allowed by the key scope',
  insufficient_scope: 'Insufficient scope',
  forbidden: 'Forbidden',
  scope_too_wide: 'Scope wider than the creator\'s',
  key_limit_reached: 'Key limit reached',
  insufficient_credits: 'Insufficient credits',
  not_found: 'Not found',
  duplicate_name: 'Duplicate name',
  invalid_state: 'Invalid state for this operation',
  malformed_request: 'Malformed request',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  validation_failed: 'Validation failed',
  rate_limited: 'Rate limit exceeded',
  quota_exceeded: 'Quota exceeded',
  internal_error: 'Internal server error',
  upstream_error: 'Upstream error',
  service_unavailable: 'Service unavailable',
  upstream_timeout: 'Upstream timeout',
};

/** The problem `type` URI of a code; documented in docs/errors.md. */
export function problemType(code: ProblemCode): string {
  return `urn:tollgate:problem:${code}`;
}
