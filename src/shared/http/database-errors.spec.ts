import { QueryFailedError } from 'typeorm';
import { DATABASE_BUSY_CODE, isDatabaseUnavailable, isUnstorableText } from './database-errors';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['connection refused', pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['connection reset', pgError('ECONNRESET')],
    ['admin shutdown (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['cannot connect now (57P03)', pgError('57P03', 'the database system is starting up')],
    ['connection failure (08006)', pgError('08006')],
    ['pool timeout', new Error('timeout exceeded when trying to connect')],
    ['connection terminated', new Error('Connection terminated unexpectedly')],
    ['closed pooled client', new Error('Client was closed and is not queryable')],
    ['released query runner', new Error('Database connection provided by a query runner was already released, cannot continue to use its querying methods anymore.')],
    ['query runner released before its first statement', new Error('Query runner already released. Cannot run queries anymore.')],
    ['QueryFailedError wrapping 57P01', new QueryFailedError('SELECT 1', [], pgError('57P01'))],
    ['cause chain', Object.assign(new Error('outer'), { cause: pgError('ECONNREFUSED') })],
    ['AggregateError of refusals', new AggregateError([pgError('ECONNREFUSED'), pgError('ECONNREFUSED')], 'connect')],
    ['admission statement stuck (Tollgate)', pgError(DATABASE_BUSY_CODE, 'admission refused: stalled')],
  ])('%s → unavailable', (_label, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ['unique violation', new QueryFailedError('INSERT', [], pgError('23505', 'duplicate key'))],
    ['syntax error', pgError('42601')],
    ['plain error', new Error('boom')],
    ['not an error', 'ECONNREFUSED'],
    ['null', null],
  ])('%s → not unavailable', (_label, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });
});

describe('isUnstorableText', () => {
  it('recognises U+0000 refusals, directly or through QueryFailedError', () => {
    expect(isUnstorableText(new QueryFailedError('INSERT', [], pgError('22021')))).toBe(true);
    expect(isUnstorableText(pgError('22P05'))).toBe(true);
    expect(isUnstorableText(pgError('23505'))).toBe(false);
    expect(isUnstorableText(undefined)).toBe(false);
  });
});
