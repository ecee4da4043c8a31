import { DomainError } from '../../shared/domain/domain-error';
import {
  APIKeyNotFoundError,
  DuplicateKeyNameError,
  KeyLimitReachedError,
  KeyStateError,
  ScopeTooWideError,
} from './api-key.errors';

describe('API key errors', () => {
  it.each<[DomainError, string, string, Record<string, unknown> | undefined]>([
    [new DuplicateKeyNameError('ci'), 'DuplicateKeyNameError', 'duplicate_name', { name: 'ci' }],
    [new KeyLimitReachedError(25), 'KeyLimitReachedError', 'key_limit_reached', { limit: 25 }],
    [new ScopeTooWideError(['x']), 'ScopeTooWideError', 'scope_too_wide', { reasons: ['x'] }],
    [new KeyStateError('nope'), 'KeyStateError', 'invalid_state', undefined],
    [new APIKeyNotFoundError('k1'), 'APIKeyNotFoundError', 'not_found', undefined],
  ])('%s has name %p and code %p', (err, name, code, details) => {
    expect(err).toBeInstanceOf(DomainError);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.details).toEqual(details);
  });

  it('not-found message names the key', () => {
    expect(new APIKeyNotFoundError('k1').message).toBe('API key k1 was not found.');
  });
});
