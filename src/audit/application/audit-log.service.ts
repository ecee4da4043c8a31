import { Injectable } from '@nestjs/common';
import type { StoredAuditEvent } from '../domain/audit-event';
import { AuditEventNotFoundError, InvalidAuditCursorError, InvalidAuditRangeError } from '../domain/audit.errors';
import { ChainVerifier } from '../domain/audit-hash';
import { AuditLogFilter, AuditLogRepository } from '../domain/audit-log.repository';

/** An auditor's filters; the tenant always comes from the caller's principal. */
export type AuditLogCriteria = Omit<AuditLogFilter, 'tenantId'>;

export interface AuditLogPage {
  data: StoredAuditEvent[];
  nextCursor: string | null;
}

export interface ChainVerification {
  valid: boolean;
  /** Events examined in seq order; when broken, up to and including the first broken one. */
  checked: number;
  firstBrokenId: string | null;
  /** The last event's hash when valid: note it somewhere else to detect a later truncation. */
  headHash: string | null;
}

/** Rows fetched per query by export and verify: memory stays flat whatever the log's size. */
export const SCAN_PAGE_SIZE = 500;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The auditor's view of the log (L2, L3). Ordering:
 * - `list` is newest first, keyset on `seq` descending (`seq < cursor`).
 *   Within a tenant, seq order is commit order (appends hold the tenant's
 *   lock until commit), so a walk never skips nor repeats an event; events
 *   appended after the first page are newer than the walk and show up on the
 *   next walk's first page.
 * - `export` and `verify` are oldest first (chain order), keyset ascending,
 *   frozen at the tenant's head seq when they start.
 */
@Injectable()
export class AuditLogService {
  constructor(private readonly log: AuditLogRepository) {}

  async list(tenantId: string, criteria: AuditLogCriteria, limit: number, cursor?: string): Promise<AuditLogPage> {
    checkRange(criteria);
    const before = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await this.log.page({ ...criteria, tenantId }, { before }, 'desc', limit + 1);
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    return { data, nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null };
  }

  async get(tenantId: string, id: string): Promise<StoredAuditEvent> {
    const event = UUID.test(id) ? await this.log.findById(tenantId, id) : null;
    if (!event) throw new AuditEventNotFoundError();
    return event;
  }

  /**
   * The matching events, oldest first, fetched `pageSize` at a time as the
   * consumer reads. Filters are checked and the head is read before this
   * resolves, so a bad query or an unreachable database is still an error
   * response rather than a truncated stream.
   */
  async export(tenantId: string, criteria: AuditLogCriteria, pageSize = SCAN_PAGE_SIZE): Promise<AsyncIterable<StoredAuditEvent>> {
    checkRange(criteria);
    const head = await this.log.headSeq(tenantId);
    return this.scan({ ...criteria, tenantId }, head, pageSize);
  }

  /** Recomputes the tenant's chain in seq order and names the first broken event. */
  async verify(tenantId: string, pageSize = SCAN_PAGE_SIZE): Promise<ChainVerification> {
    const head = await this.log.headSeq(tenantId);
    const verifier = new ChainVerifier();
    for await (const event of this.scan({ tenantId }, head, pageSize)) {
      if (!verifier.accept({ event, prevHash: event.prevHash, hash: event.hash })) break;
    }
    return {
      valid: verifier.valid,
      checked: verifier.checked,
      firstBrokenId: verifier.firstBroken?.id ?? null,
      headHash: verifier.valid ? verifier.headHash : null,
    };
  }

  private async *scan(filter: AuditLogFilter, head: string | null, pageSize: number): AsyncGenerator<StoredAuditEvent> {
    if (head === null) return;
    let after: string | undefined;
    for (;;) {
      const rows = await this.log.page(filter, { after, upTo: head }, 'asc', pageSize);
      yield* rows;
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1].seq;
    }
  }
}

function checkRange(criteria: AuditLogCriteria): void {
  if (criteria.from && criteria.to && criteria.to.getTime() <= criteria.from.getTime()) throw new InvalidAuditRangeError();
}

const MAX_BIGINT = 9223372036854775807n;

export function encodeCursor(seq: string): string {
  return Buffer.from(JSON.stringify({ seq }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  if (cursor.length > 100) throw new InvalidAuditCursorError();
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { seq?: unknown };
    const seq = parsed?.seq;
    if (typeof seq === 'string' && /^[1-9][0-9]{0,18}$/.test(seq) && BigInt(seq) <= MAX_BIGINT) return seq;
  } catch {
    // fall through
  }
  throw new InvalidAuditCursorError();
}
