import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { storableText } from '../../shared/domain/text';
import { AuditEvent, AuditOutcome, ChainedAuditEvent, scrubMetadata } from '../domain/audit-event';
import { toJsonValue } from '../domain/audit-hash';
import { AuditLogRepository } from '../domain/audit-log.repository';

export interface RecordAuditInput {
  tenantId: string;
  actor: Actor;
  action: string;
  target?: { type: string; id: string } | null;
  outcome?: AuditOutcome;
  request?: RequestMeta;
  metadata?: Record<string, unknown>;
}

const NO_REQUEST: RequestMeta = { requestId: null, ip: null, userAgent: null };

/**
 * What other modules call to write an audit event. Pass the caller's
 * transaction so the event commits (or rolls back) with the change it records.
 *
 * The append takes the tenant's audit-chain lock and holds it until that
 * transaction ends: record the event as the transaction's last write, so no
 * other lock is taken while holding it (no deadlock, shortest wait for the
 * tenant's other writers).
 */
@Injectable()
export class AuditRecorder {
  constructor(
    private readonly log: AuditLogRepository,
    private readonly clock: Clock,
  ) {}

  /** Appends the event to its tenant's hash chain; returns it with its `hash` and `prevHash`. */
  async record(raw: RecordAuditInput, tx?: TransactionContext): Promise<ChainedAuditEvent> {
    const input = storable(raw);
    const event: AuditEvent = {
      id: randomUUID(),
      occurredAt: this.clock.now(),
      tenantId: input.tenantId,
      actor: input.actor,
      action: input.action,
      target: input.target ?? null,
      outcome: input.outcome ?? 'success',
      request: input.request ?? NO_REQUEST,
      // Hash what jsonb will give back (Dates as ISO strings, undefined members dropped).
      metadata: toJsonValue(scrubMetadata(input.metadata ?? {})) as Record<string, unknown>,
    };
    return this.log.append(event, tx);
  }

  /** Events about one target, oldest first (used by tests and, later, the auditor API). */
  forTarget(tenantId: string, targetId: string): Promise<AuditEvent[]> {
    return this.log.listForTarget(tenantId, targetId);
  }
}

/**
 * PostgreSQL cannot store U+0000 or a lone surrogate as they are, and callers
 * put them in what gets audited (a tool named "a%00b" in a URL, "\u0000" or
 * "\ud800" in JSON-RPC or a JWT claim): the insert failed (a 500 with no audit
 * event), or the row came back different from what was hashed (the chain
 * broken for good). Recorded as U+FFFD instead, before hashing, so the chain
 * verifies.
 */
function storable<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (value === null || typeof value !== 'object' || depth > 32 || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => storable(v, depth + 1)) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k, depth + 1), storable(v, depth + 1)])) as T;
}
