import { ApiProperty } from '@nestjs/swagger';
import { AUDIT_OUTCOMES } from '../domain/audit-event';

class AuditRefDto {
  @ApiProperty({ example: 'api_key' })
  type: string;

  @ApiProperty({ example: '4b0c2f0e-…' })
  id: string;
}

export class AuditEventDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'date-time' })
  occurred_at: string;

  @ApiProperty({ example: 'acme' })
  tenant_id: string;

  @ApiProperty({ type: AuditRefDto, example: { type: 'user', id: 'user-admin' } })
  actor: AuditRefDto;

  @ApiProperty({ example: 'api_key.revoked' })
  action: string;

  @ApiProperty({ type: AuditRefDto, nullable: true })
  target: AuditRefDto | null;

  @ApiProperty({ enum: AUDIT_OUTCOMES })
  outcome: string;

  @ApiProperty({ type: String, nullable: true })
  ip: string | null;

  @ApiProperty({ type: String, nullable: true })
  user_agent: string | null;

  @ApiProperty({ type: String, nullable: true })
  request_id: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true })
  metadata: Record<string, unknown>;

  @ApiProperty({ type: String, nullable: true, description: 'Hash of the previous event of the tenant (null for the first).' })
  prev_hash: string | null;

  @ApiProperty({ description: 'SHA-256 over this event and prev_hash (hash chain).' })
  hash: string;
}

export class AuditEventPageDto {
  @ApiProperty({ type: [AuditEventDto] })
  data: AuditEventDto[];

  @ApiProperty({ type: String, nullable: true })
  next_cursor: string | null;
}

export class AuditVerifyResponseDto {
  @ApiProperty({ description: 'The chain is intact.' })
  valid: boolean;

  @ApiProperty({ example: 1204 })
  checked: number;

  @ApiProperty({ type: String, nullable: true })
  first_broken_id: string | null;

  @ApiProperty({ type: String, nullable: true })
  head_hash: string | null;
}
