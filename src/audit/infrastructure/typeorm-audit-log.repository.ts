import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { ActorType } from '../../shared/domain/actor';
import type { AuditEvent, AuditOutcome } from '../domain/audit-event';
import { AuditLogRepository } from '../domain/audit-log.repository';
import { AuditEventOrmEntity } from './audit-event.orm-entity';

@Injectable()
export class TypeOrmAuditLogRepository extends AuditLogRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async append(event: AuditEvent, tx?: TransactionContext): Promise<void> {
    await managerOf(this.dataSource, tx).insert(AuditEventOrmEntity, {
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
    });
  }

  async listForTarget(tenantId: string, targetId: string): Promise<AuditEvent[]> {
    const rows = await this.dataSource.getRepository(AuditEventOrmEntity).find({
      where: { tenantId, targetId },
      order: { seq: 'ASC' },
    });
    return rows.map(toDomain);
  }
}

function toDomain(row: AuditEventOrmEntity): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurredAt,
    tenantId: row.tenantId,
    actor: { type: row.actorType as ActorType, id: row.actorId },
    action: row.action,
    target: row.targetType && row.targetId ? { type: row.targetType, id: row.targetId } : null,
    outcome: row.outcome as AuditOutcome,
    request: { requestId: row.requestId, ip: row.ip, userAgent: row.userAgent },
    metadata: row.metadata,
  };
}
