/**
 * Every refusal Tollgate can give has a stable machine `code` (PRODUCT.md
 * "Conventions"). Domain and application code throw DomainError subclasses;
 * the HTTP layer maps `code` to a status through one exhaustive table
 * (src/shared/http/problem-status.ts).
 */
export type ProblemCode =
  | 'missing_key'
  | 'invalid_key'
  | 'expired_key'
  | 'disabled_key'
  | 'revoked_key'
  | 'forbidden_resource'
  | 'insufficient_scope'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'insufficient_credits'
  | 'validation_failed'
  | 'duplicate_name'
  | 'not_found'
  | 'upstream_error'
  | 'upstream_timeout'
  | 'unauthenticated'
  | 'forbidden'
  | 'scope_too_wide'
  | 'key_limit_reached'
  | 'invalid_state'
  | 'payload_too_large'
  | 'malformed_request'
  | 'unsupported_media_type'
  | 'service_unavailable'
  | 'internal_error';

export class DomainError extends Error {
  constructor(
    readonly code: ProblemCode,
    message: string,
    /** Extra, non-secret members rendered into the problem+json body. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** One invalid field, as listed in a `validation_failed` problem. */
export interface FieldError {
  field: string;
  message: string;
}

export class ValidationFailedError extends DomainError {
  constructor(readonly errors: FieldError[], message = 'The request body is invalid.') {
    super('validation_failed', message, { errors });
  }
}

export class NotFoundError extends DomainError {
  constructor(what: string) {
    super('not_found', `${what} was not found.`);
  }
}
