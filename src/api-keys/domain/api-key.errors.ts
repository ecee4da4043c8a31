import { DomainError, NotFoundError } from '../../shared/domain/domain-error';

export class DuplicateKeyNameError extends DomainError {
  constructor(name: string) {
    super('duplicate_name', `An API key named "${name}" already exists.`, { name });
  }
}

export class KeyLimitReachedError extends DomainError {
  constructor(limit: number) {
    super('key_limit_reached', `The limit of ${limit} API keys has been reached.`, { limit });
  }
}

/** The requested scope is wider than the creator's own (API.md "Permission scope"). */
export class ScopeTooWideError extends DomainError {
  constructor(reasons: string[]) {
    super('scope_too_wide', "The requested scope is wider than the creator's own.", { reasons });
  }
}

/** A verb that the key's current status does not permit (e.g. enabling a revoked key). */
export class KeyStateError extends DomainError {
  constructor(message: string) {
    super('invalid_state', message);
  }
}

export class APIKeyNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(`API key ${id}`);
  }
}
