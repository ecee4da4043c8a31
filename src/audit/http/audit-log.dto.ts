import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { AUDIT_OUTCOMES, AuditOutcome, StoredAuditEvent } from '../domain/audit-event';
import type { AuditLogCriteria } from '../application/audit-log.service';
import { IsIsoDateTime } from '../../shared/http/iso-date.validator';

const ACTION = /^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$/;
const ID = /^[\x21-\x7e]{1,256}$/;

/** Filters shared by the listing and the export. */
export class AuditLogFilterQueryDto {
  /** Exact action (`api_key.revoked`) or a prefix ending in `.*` (`api_key.*`). */
  @ApiPropertyOptional({ example: 'api_key.*', description: 'Exact action or a prefix ending in .*' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  @Matches(ACTION, { message: 'action must be a dotted action name, optionally ending in .*' })
  action?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(ID, { message: 'actor_id must be 1-256 printable ASCII characters' })
  actor_id?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(ID, { message: 'target_id must be 1-256 printable ASCII characters' })
  target_id?: string;

  @ApiPropertyOptional({ enum: AUDIT_OUTCOMES })
  @IsOptional()
  @IsIn(AUDIT_OUTCOMES as AuditOutcome[])
  outcome?: AuditOutcome;

  /** Inclusive. */
  @ApiPropertyOptional({ format: 'date-time', description: 'Inclusive.' })
  @IsOptional()
  @IsIsoDateTime()
  from?: string;

  /** Exclusive. */
  @ApiPropertyOptional({ format: 'date-time', description: 'Exclusive.' })
  @IsOptional()
  @IsIsoDateTime()
  to?: string;
}

export class ListAuditLogsQueryDto extends AuditLogFilterQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: '`next_cursor` of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  cursor?: string;
}

export const EXPORT_FORMATS = ['ndjson', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export class ExportAuditLogsQueryDto extends AuditLogFilterQueryDto {
  @ApiPropertyOptional({ enum: EXPORT_FORMATS, default: 'ndjson' })
  @IsOptional()
  @IsIn(EXPORT_FORMATS as unknown as string[])
  format?: ExportFormat;
}

export function criteriaOf(q: AuditLogFilterQueryDto): AuditLogCriteria {
  return {
    action: q.action,
    actorId: q.actor_id,
    targetId: q.target_id,
    outcome: q.outcome,
    from: q.from === undefined ? undefined : new Date(q.from),
    to: q.to === undefined ? undefined : new Date(q.to),
  };
}

export interface AuditEventResponseDto {
  id: string;
  occurred_at: string;
  tenant_id: string;
  actor: { type: string; id: string };
  action: string;
  target: { type: string; id: string } | null;
  outcome: AuditOutcome;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  metadata: Record<string, unknown>;
  prev_hash: string | null;
  hash: string;
}

/** The API shape; also the NDJSON line, so an export can be re-hashed offline. */
export function toAuditEventResponse(e: StoredAuditEvent): AuditEventResponseDto {
  return {
    id: e.id,
    occurred_at: e.occurredAt.toISOString(),
    tenant_id: e.tenantId,
    actor: { type: e.actor.type, id: e.actor.id },
    action: e.action,
    target: e.target ? { type: e.target.type, id: e.target.id } : null,
    outcome: e.outcome,
    ip: e.request.ip,
    user_agent: e.request.userAgent,
    request_id: e.request.requestId,
    metadata: e.metadata,
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}
