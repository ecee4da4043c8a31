import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { AuditEvent, AuditOutcome, ChainedAuditEvent, StoredAuditEvent } from './audit-event';

/** What an auditor narrows a listing or an export by (all optional, combined with AND). */
export interface AuditLogFilter {
  tenantId: string;
  /** Exact action, or a prefix when it ends with `.*` (`api_key.*`). */
  action?: string;
  actorId?: string;
  targetId?: string;
  outcome?: AuditOutcome;
  /** occurred_at >= from */
  from?: Date;
  /** occurred_at < to */
  to?: Date;
}

/** A keyset window over `seq`, the tenant's append order. Bounds are exclusive except `upTo`. */
export interface SeqWindow {
  /** seq < before (newest-first listing). */
  before?: string;
  /** seq > after (oldest-first scans). */
  after?: string;
  /** seq <= upTo (freezes a scan at the head seen when it started). */
  upTo?: string;
}

/** Port: the append-only store. There is deliberately no update or delete. */
export abstract class AuditLogRepository {
  /**
   * Links `event` to its tenant's chain and inserts it, in `tx` when given
   * (the event then commits with the change it records) or in a transaction
   * of its own. Concurrent appends in one tenant are serialized.
   */
  abstract append(event: AuditEvent, tx?: TransactionContext): Promise<ChainedAuditEvent>;
  abstract listForTarget(tenantId: string, targetId: string): Promise<AuditEvent[]>;
  abstract findById(tenantId: string, id: string): Promise<StoredAuditEvent | null>;
  /** Up to `limit` matching events in `order` of seq within `window`. */
  abstract page(filter: AuditLogFilter, window: SeqWindow, order: 'asc' | 'desc', limit: number): Promise<StoredAuditEvent[]>;
  /** The tenant's highest seq, null when it has no event. */
  abstract headSeq(tenantId: string): Promise<string | null>;
}
