import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsBoundedJsonObject } from '../../shared/http/json-size.validator';
import { MAX_GRACE_PERIOD_SECONDS } from '../application/api-keys.service';
import type { APIKey, APIKeyStatus } from '../domain/api-key';
import type { PermissionScopeJson } from '../domain/permission-scope';
import { RESOURCE_TYPES, ResourceType } from '../domain/resource-type';

const USER_ID = /^[\x21-\x7e]{1,256}$/;
const STATUSES: APIKeyStatus[] = ['active', 'disabled', 'expired', 'revoked'];

export class CreateAPIKeyDto {
  @IsString()
  @Length(1, 100)
  name: string;

  /** Parsed by PermissionScope.parse (field-level errors come from the domain). */
  @IsObject()
  permission_scope: Record<string, unknown>;

  @IsOptional()
  @IsISO8601({ strict: true, strictSeparator: true })
  expires_at?: string;

  @IsOptional()
  @IsString()
  @Matches(USER_ID, { message: 'user_id must be 1-256 printable ASCII characters' })
  user_id?: string;

  @IsOptional()
  @IsBoundedJsonObject(4096)
  metadata?: Record<string, unknown>;
}

export class UpdateAPIKeyDto {
  @IsOptional()
  @IsString()
  @Length(1, 100)
  name?: string;

  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  /** null removes the expiry. */
  @ValidateIf((o: UpdateAPIKeyDto) => o.expires_at !== null && o.expires_at !== undefined)
  @IsISO8601({ strict: true, strictSeparator: true })
  expires_at?: string | null;

  @IsOptional()
  @IsObject()
  permission_scope?: Record<string, unknown>;

  @IsOptional()
  @IsBoundedJsonObject(4096)
  metadata?: Record<string, unknown>;
}

export class RotateAPIKeyDto {
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_GRACE_PERIOD_SECONDS)
  grace_period_seconds?: number;
}

export class ListAPIKeysQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  cursor?: string;

  @IsOptional()
  @IsString()
  @Matches(USER_ID)
  user_id?: string;

  @IsOptional()
  @IsIn(STATUSES)
  status?: APIKeyStatus;

  @IsOptional()
  @IsString()
  @Length(1, 100)
  name?: string;
}

export class ResourceDto {
  @IsIn(RESOURCE_TYPES as unknown as string[])
  type: ResourceType;

  @IsString()
  @Length(1, 256)
  id: string;
}

export class VerifyKeyDto {
  @IsString()
  @MaxLength(256)
  key: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => ResourceDto)
  resource?: ResourceDto;

  /** Accepted and validated; charging it lands with credits (issue 4). */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  cost?: number;
}

export interface APIKeyResponseDto {
  id: string;
  name: string;
  start: string;
  tenant_id: string;
  user_id: string;
  status: APIKeyStatus;
  enabled: boolean;
  permission_scope: PermissionScopeJson;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  rotated_from: string | null;
  grace_until: string | null;
  metadata: Record<string, unknown>;
  created_by: string;
  created_at: string;
  updated_at: string;
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
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    updated_at: key.updatedAt.toISOString(),
  };
}

export function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}
