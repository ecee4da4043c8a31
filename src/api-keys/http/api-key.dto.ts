import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import { IsBoundedJsonObject } from '../../shared/http/json-size.validator';
import { IsOmittable } from '../../shared/http/validation';
import { MAX_GRACE_PERIOD_SECONDS } from '../application/api-keys.service';
import { MAX_MONTHLY_CREDIT_CAP } from '../domain/api-key';
import type { APIKey, APIKeyStatus } from '../domain/api-key';
import type { PermissionScopeJson } from '../domain/permission-scope';
import { RESOURCE_TYPES, ResourceType } from '../domain/resource-type';
import { IsIsoDateTime } from '../../shared/http/iso-date.validator';

const USER_ID = /^[\x21-\x7e]{1,256}$/;
const STATUSES: APIKeyStatus[] = ['active', 'disabled', 'expired', 'revoked'];
const CREDIT_CAP_DOC = {
  type: Number,
  nullable: true,
  minimum: 0,
  maximum: MAX_MONTHLY_CREDIT_CAP,
  example: 500,
  description: 'Most credits this key may spend per calendar month (UTC); a priced call past it is refused with 402. null = no cap.',
} as const;

/** The scope as sent (`PermissionScope.parse` checks it): glob patterns per resource type, plus denials. */
export class PermissionScopeDto {
  @ApiPropertyOptional({ type: [String], example: ['support-*'] })
  agent_ids?: string[];

  @ApiPropertyOptional({ type: [String], example: [] })
  flow_ids?: string[];

  @ApiPropertyOptional({ type: [String], example: ['github__*', 'search'] })
  mcp_tool_ids?: string[];

  @ApiPropertyOptional({ type: [String], example: [] })
  vector_store_ids?: string[];

  @ApiPropertyOptional({
    type: 'object',
    properties: {
      agent_ids: { type: 'array', items: { type: 'string' } },
      flow_ids: { type: 'array', items: { type: 'string' } },
      mcp_tool_ids: { type: 'array', items: { type: 'string' } },
      vector_store_ids: { type: 'array', items: { type: 'string' } },
    },
    example: { mcp_tool_ids: ['github__delete_*'] },
    description: 'Patterns refused even when an allow pattern matches.',
  })
  deny?: Record<string, string[]>;
}

export class CreateAPIKeyDto {
  @ApiProperty({ minLength: 1, maxLength: 100, example: 'ci-agent' })
  @IsString()
  @Length(1, 100)
  name: string;

  /** Parsed by PermissionScope.parse (field-level errors come from the domain). */
  @ApiProperty({ type: PermissionScopeDto })
  @IsObject()
  permission_scope: Record<string, unknown>;

  @ApiPropertyOptional({ format: 'date-time', example: '2027-01-01T00:00:00Z' })
  @IsOptional()
  @IsIsoDateTime()
  expires_at?: string;

  @ApiPropertyOptional({ description: 'Owner of the key (admins only; developers own their keys). Defaults to the caller.', example: 'user-42' })
  @IsOptional()
  @IsString()
  @Matches(USER_ID, { message: 'user_id must be 1-256 printable ASCII characters' })
  user_id?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Free JSON, at most 4 KiB.', example: { team: 'platform' } })
  @IsOptional()
  @IsBoundedJsonObject(4096)
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional(CREDIT_CAP_DOC)
  @ValidateIf((o: { monthly_credit_cap?: unknown }) => o.monthly_credit_cap !== null && o.monthly_credit_cap !== undefined)
  @IsInt()
  @Min(0)
  @Max(MAX_MONTHLY_CREDIT_CAP)
  monthly_credit_cap?: number | null;
}

export class UpdateAPIKeyDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 100 })
  @IsOmittable()
  @IsString()
  @Length(1, 100)
  name?: string;

  @ApiPropertyOptional({ description: 'false disables the key (refused with disabled_key) until enabled again.' })
  @IsOmittable()
  @IsBoolean()
  enabled?: boolean;

  /** null removes the expiry. */
  @ApiPropertyOptional({ format: 'date-time', nullable: true, description: 'null removes the expiry.' })
  @ValidateIf((o: UpdateAPIKeyDto) => o.expires_at !== null && o.expires_at !== undefined)
  @IsIsoDateTime()
  expires_at?: string | null;

  @ApiPropertyOptional({ type: PermissionScopeDto })
  @IsOmittable()
  @IsObject()
  permission_scope?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOmittable()
  @IsBoundedJsonObject(4096)
  metadata?: Record<string, unknown>;

  /** null lifts the cap. */
  @ApiPropertyOptional(CREDIT_CAP_DOC)
  @ValidateIf((o: { monthly_credit_cap?: unknown }) => o.monthly_credit_cap !== null && o.monthly_credit_cap !== undefined)
  @IsInt()
  @Min(0)
  @Max(MAX_MONTHLY_CREDIT_CAP)
  monthly_credit_cap?: number | null;
}

export class RotateAPIKeyDto {
  @ApiPropertyOptional({ minimum: 0, maximum: MAX_GRACE_PERIOD_SECONDS, default: 0, description: 'How long the previous key keeps working.' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_GRACE_PERIOD_SECONDS)
  grace_period_seconds?: number;
}

export class ListAPIKeysQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: '`next_cursor` of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(USER_ID)
  user_id?: string;

  @ApiPropertyOptional({ enum: STATUSES })
  @IsOptional()
  @IsIn(STATUSES)
  status?: APIKeyStatus;

  @ApiPropertyOptional({ description: 'Keys whose name contains this text, ignoring case.' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  name?: string;
}

export class ResourceDto {
  @ApiProperty({ enum: RESOURCE_TYPES, example: 'mcp_tool' })
  @IsIn(RESOURCE_TYPES as unknown as string[])
  type: ResourceType;

  @ApiProperty({ example: 'github__create_issue', description: 'No control characters (it can be written to the ledger by a charged verification).' })
  @IsString()
  @Length(1, 256)
  @Matches(/^\P{Cc}+$/u, { message: 'id must not contain control characters' })
  id: string;
}

export class PermissionScopeResponseDto {
  @ApiProperty({ type: [String], example: [] })
  agent_ids: string[];

  @ApiProperty({ type: [String], example: [] })
  flow_ids: string[];

  @ApiProperty({ type: [String], example: ['github__*'] })
  mcp_tool_ids: string[];

  @ApiProperty({ type: [String], example: [] })
  vector_store_ids: string[];

  @ApiProperty({
    type: 'object',
    properties: {
      agent_ids: { type: 'array', items: { type: 'string' } },
      flow_ids: { type: 'array', items: { type: 'string' } },
      mcp_tool_ids: { type: 'array', items: { type: 'string' } },
      vector_store_ids: { type: 'array', items: { type: 'string' } },
    },
  })
  deny: PermissionScopeJson['deny'];
}

export class APIKeyResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'ci-agent' })
  name: string;

  @ApiProperty({ description: 'The first characters of the key, to recognise it (never the secret).', example: 'tg_live_8kQ2' })
  start: string;

  @ApiProperty({ example: 'acme' })
  tenant_id: string;

  @ApiProperty({ example: 'user-42' })
  user_id: string;

  @ApiProperty({ enum: STATUSES })
  status: APIKeyStatus;

  @ApiProperty()
  enabled: boolean;

  @ApiProperty({ type: PermissionScopeResponseDto })
  permission_scope: PermissionScopeJson;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  expires_at: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  revoked_at: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_used_at: string | null;

  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'The key this one replaced by rotation.' })
  rotated_from: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'A rotated-out key works until then.' })
  grace_until: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true })
  metadata: Record<string, unknown>;

  @ApiProperty(CREDIT_CAP_DOC)
  monthly_credit_cap: number | null;

  @ApiProperty({ example: 'user-admin' })
  created_by: string;

  @ApiProperty({ format: 'date-time' })
  created_at: string;

  @ApiProperty({ format: 'date-time' })
  updated_at: string;
}

/** POST /api-keys: the key plus its secret, shown this once. */
export class CreatedAPIKeyResponseDto extends APIKeyResponseDto {
  @ApiProperty({ description: 'The API key itself: shown once, store it now.', example: 'tg_live_8kQ2…' })
  token: string;
}

export class RotatedAPIKeyResponseDto extends CreatedAPIKeyResponseDto {
  @ApiProperty({ type: APIKeyResponseDto, description: 'The key rotated out (valid until its grace_until).' })
  previous_key: APIKeyResponseDto;
}

export class APIKeyPageResponseDto {
  @ApiProperty({ type: [APIKeyResponseDto] })
  data: APIKeyResponseDto[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' })
  next_cursor: string | null;
}

export function toAPIKeyResponse(key: APIKey, now: Date): APIKeyResponseDto {
  return {
    id: key.id,
    name: key.name,
    start: key.start,
    tenant_id: key.tenantId,
    user_id: key.userId,
    status: key.status(now),
    enabled: key.enabled,
    permission_scope: key.scope.toJSON(),
    expires_at: iso(key.expiresAt),
    revoked_at: iso(key.revokedAt),
    last_used_at: iso(key.lastUsedAt),
    rotated_from: key.rotatedFromId,
    grace_until: iso(key.graceUntil),
    metadata: key.metadata,
    monthly_credit_cap: key.monthlyCreditCap,
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    updated_at: key.updatedAt.toISOString(),
  };
}

export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}
