/**
 * Whether an error means "PostgreSQL cannot be reached right now" (issue 8 §3):
 * the server is down, restarting or refusing connections, a connection broke
 * mid-query, or the pool timed out waiting for one. Such failures are the
 * platform's, not the caller's, and are worth retrying: the problem filter
 * answers them 503 `service_unavailable` with Retry-After instead of a 500.
 *
 * Matched on the pg driver's error codes and messages, through TypeORM's
 * QueryFailedError (`driverError`) and `cause` chains.
 */

/**
 * Tollgate's own code for "PostgreSQL is not keeping up": work waiting for a
 * statement that has been in flight too long (the admission batches,
 * PostgresAdmissionStore) is refused with it rather than left waiting.
 */
export const DATABASE_BUSY_CODE = 'TOLLGATE_DATABASE_BUSY';

/** Node socket errors and SQLSTATEs: admin/crash shutdown, cannot connect now, connection exceptions, too many clients. */
const UNAVAILABLE_CODES = new Set([
  DATABASE_BUSY_CODE,
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '08000', // connection_exception
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '53300', // too_many_connections
]);

/** Messages of pg / pg-pool / TypeORM failures that carry no code. */
const UNAVAILABLE_MESSAGES = [
  'connection terminated', // "Connection terminated", "... unexpectedly", "... due to connection timeout"
  'timeout exceeded when trying to connect', // pg-pool: no connection within connectionTimeoutMillis
  'client has encountered a connection error and is not queryable',
  'client was closed and is not queryable', // a pooled client whose connection died (e.g. ROLLBACK after the server went away)
  'connection is not established', // TypeORM: a query runner whose connection is gone
  // TypeORM's QueryRunnerProviderAlreadyReleasedError: PostgresQueryRunner releases itself when its
  // connection emits 'error' (server shut down mid-transaction); the transaction's next query meets this.
  'connection provided by a query runner was already released',
  // TypeORM's QueryRunnerAlreadyReleasedError: the same release, met by a runner's *first* statement
  // (START TRANSACTION) when its connection died between the pool handing it out and that statement.
  // Seen once in a few runs of test/reliability/postgres-faults as a 500 on GET /api/v1/usage.
  'query runner already released',
];

/** Seconds a client should wait before retrying while the database is unavailable. */
export const DATABASE_RETRY_AFTER_S = 5;

export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  if (typeof e.message === 'string') {
    const message = e.message.toLowerCase();
    if (UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true;
  }
  // Node's net.connect may reject with an AggregateError of per-address failures.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => isDatabaseUnavailable(x, depth + 1))) return true;
  return isDatabaseUnavailable(e.driverError, depth + 1) || isDatabaseUnavailable(e.cause, depth + 1);
}

/**
 * Text PostgreSQL refuses to store: U+0000 in text or jsonb (SQLSTATE 22021
 * character_not_in_repertoire, 22P05 untranslatable_character). It comes from
 * the caller (a JSON "\u0000", a %00 in a path): a 400, not a 500.
 */
export function isUnstorableText(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { code?: unknown; driverError?: { code?: unknown } };
  const code = e.driverError?.code ?? e.code;
  return code === '22021' || code === '22P05';
}
