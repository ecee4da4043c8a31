import { NotFoundError, ValidationFailedError } from '../../shared/domain/domain-error';

/** Unknown id, another tenant's event, or not a UUID at all: the same 404. */
export class AuditEventNotFoundError extends NotFoundError {
  constructor() {
    super('Audit event');
  }
}

export class InvalidAuditCursorError extends ValidationFailedError {
  constructor() {
    super([{ field: 'cursor', message: 'is not a cursor returned by this API' }], 'The query is invalid.');
  }
}

export class InvalidAuditRangeError extends ValidationFailedError {
  constructor() {
    super([{ field: 'to', message: 'must be after from' }], 'The query is invalid.');
  }
}
