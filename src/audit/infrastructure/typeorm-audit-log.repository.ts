import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { ActorType } from '../../shared/domain/actor';
import type { AuditEvent, AuditOutcome, ChainedAuditEvent, StoredAuditEvent } from '../domain/audit-event';
import { hashAuditEvent } from '../domain/audit-hash';
import { AuditLogFilter, AuditLogRepository, SeqWindow } from '../domain/audit-log.repository';
import { AuditEventOrmEntity } from './audit-event.orm-entity';

// `seq` is read as text (bigint); ORDER BY and WHERE always name the table's column as `e.seq`,
// never the text alias, which would sort "10" before "9".
const COLUMNS = `e.seq::text AS seq, id, occurred_at, tenant_id, actor_type, actor_id, action, target_type, target_id,
  outcome, ip, user_agent, request_id, metadata, prev_hash, hash`;

interface AuditRow {
  seq: string;
  id: string;
  occurred_at: Date;
  tenant_id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  metadata: Record<string, unknown>;
  prev_hash: string | null;
  hash: string;
}

@Injectable()
export class TypeOrmAuditLogRepository extends AuditLogRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async append(event: AuditEvent, tx?: TransactionContext): Promise<ChainedAuditEvent> {
    if (tx === undefined) return this.dataSource.transaction((m) => this.appendIn(m, event));
    return this.appendIn(managerOf(this.dataSource, tx), event);
  }

  /**
   * The per-tenant advisory lock is held until the transaction ends, so the
   * tenant's writers take turns: each reads the head written (and committed)
   * by the one before it, and a tenant's seq order is its commit order — the
   * property the auditor's keyset cursors rely on.
   */
  private async appendIn(m: EntityManager, event: AuditEvent): Promise<ChainedAuditEvent> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('audit:' || $1))`, [event.tenantId]);
    const head = (await m.query(`SELECT hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`, [
      event.tenantId,
    ])) as { hash: string }[];
    const prevHash = head[0]?.hash ?? null;
    const hash = hashAuditEvent(event, prevHash);
    await m.insert(AuditEventOrmEntity, {
      id: event.id,
      occurredAt: event.occurredAt,
      tenantId: event.tenantId,
      actorType: event.actor.type,
      actorId: event.actor.id,
      action: event.action,
      targetType: event.target?.type ?? null,
      targetId: event.target?.id ?? null,
      outcome: event.outcome,
      ip: event.request.ip,
      userAgent: event.request.userAgent,
      requestId: event.request.requestId,
      metadata: event.metadata as Record<string, never>,
      prevHash,
      hash,
    });
    return { ...event, prevHash, hash };
  }

  async listForTarget(tenantId: string, targetId: string): Promise<AuditEvent[]> {
    const rows = (await this.dataSource.query(
      `SELECT ${COLUMNS} FROM audit_events e WHERE tenant_id = $1 AND target_id = $2 ORDER BY e.seq ASC`,
      [tenantId, targetId],
    )) as AuditRow[];
    return rows.map(toDomain);
  }

  async findById(tenantId: string, id: string): Promise<StoredAuditEvent | null> {
    const rows = (await this.dataSource.query(`SELECT ${COLUMNS} FROM audit_events e WHERE tenant_id = $1 AND id = $2`, [
      tenantId,
      id,
    ])) as AuditRow[];
    return rows[0] ? toDomain(rows[0]) : null;
  }

  async page(filter: AuditLogFilter, window: SeqWindow, order: 'asc' | 'desc', limit: number): Promise<StoredAuditEvent[]> {
    const params: unknown[] = [filter.tenantId];
    const where = ['tenant_id = $1'];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.action !== undefined) {
      if (filter.action.endsWith('.*')) add((p) => `action LIKE ${p}`, `${escapeLike(filter.action.slice(0, -1))}%`);
      else add((p) => `action = ${p}`, filter.action);
    }
    if (filter.actorId !== undefined) add((p) => `actor_id = ${p}`, filter.actorId);
    if (filter.targetId !== undefined) add((p) => `target_id = ${p}`, filter.targetId);
    if (filter.outcome !== undefined) add((p) => `outcome = ${p}`, filter.outcome);
    if (filter.from !== undefined) add((p) => `occurred_at >= ${p}`, filter.from);
    if (filter.to !== undefined) add((p) => `occurred_at < ${p}`, filter.to);
    if (window.before !== undefined) add((p) => `e.seq < ${p}::bigint`, window.before);
    if (window.after !== undefined) add((p) => `e.seq > ${p}::bigint`, window.after);
    if (window.upTo !== undefined) add((p) => `e.seq <= ${p}::bigint`, window.upTo);
    params.push(limit);
    const rows = (await this.dataSource.query(
      `SELECT ${COLUMNS} FROM audit_events e WHERE ${where.join(' AND ')}
       ORDER BY e.seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`,
      params,
    )) as AuditRow[];
    return rows.map(toDomain);
  }

  async headSeq(tenantId: string): Promise<string | null> {
    const rows = (await this.dataSource.query(
      `SELECT e.seq::text AS seq FROM audit_events e WHERE tenant_id = $1 ORDER BY e.seq DESC LIMIT 1`,
      [tenantId],
    )) as { seq: string }[];
    return rows[0]?.seq ?? null;
  }
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function toDomain(row: AuditRow): StoredAuditEvent {
  return {
    seq: row.seq,
    id: row.id,
    occurredAt: row.occurred_at,
    tenantId: row.tenant_id,
    actor: { type: row.actor_type as ActorType, id: row.actor_id },
    action: row.action,
    target: row.target_type !== null && row.target_id !== null ? { type: row.target_type, id: row.target_id } : null,
    outcome: row.outcome as AuditOutcome,
    request: { requestId: row.request_id, ip: row.ip, userAgent: row.user_agent },
    metadata: row.metadata,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
