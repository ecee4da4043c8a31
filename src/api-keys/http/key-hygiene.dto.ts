import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import type { HygieneReport } from '../application/api-keys.service';
import { HYGIENE_FINDINGS } from '../domain/key-hygiene';
import { APIKeyResponseDto, toAPIKeyResponse } from './api-key.dto';

export class KeyHygieneQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 3650, default: 30, description: 'A key unused for this many days is idle (never used and this old: never_used).' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(3650)
  idle_days?: number;
}

class HygieneCountsDto {
  @ApiProperty({ example: 3 }) never_expires: number;
  @ApiProperty({ example: 1 }) idle: number;
  @ApiProperty({ example: 1 }) never_used: number;
  @ApiProperty({ example: 5 }) no_credit_cap: number;
  @ApiProperty({ example: 2 }) over_max_lifetime: number;
}

class FlaggedKeyDto {
  @ApiProperty({ type: APIKeyResponseDto })
  key: APIKeyResponseDto;

  @ApiProperty({ type: [String], enum: HYGIENE_FINDINGS, example: ['never_expires', 'no_credit_cap'] })
  findings: string[];
}

export class KeyHygieneResponseDto {
  @ApiProperty({ format: 'date-time' })
  generated_at: string;

  @ApiProperty({ example: 'pro' })
  plan: string;

  @ApiProperty({ example: 30 })
  idle_days: number;

  @ApiProperty({ type: Number, nullable: true, example: 90, description: "The plan's max_key_lifetime_days (null: no maximum)." })
  max_key_lifetime_days: number | null;

  @ApiProperty({ example: 12, description: 'Live keys looked at: active or disabled (revoked and expired keys are out).' })
  live_keys: number;

  @ApiProperty({ type: HygieneCountsDto, description: 'Live keys per finding.' })
  counts: HygieneCountsDto;

  @ApiProperty({ type: [FlaggedKeyDto], description: 'Only the keys with at least one finding, newest first.' })
  keys: FlaggedKeyDto[];
}

export function toHygieneResponse(r: HygieneReport): KeyHygieneResponseDto {
  return {
    generated_at: r.generatedAt.toISOString(),
    plan: r.plan,
    idle_days: r.policy.idleDays,
    max_key_lifetime_days: r.policy.maxLifetimeDays,
    live_keys: r.live,
    counts: r.counts,
    keys: r.keys.map(({ key, findings }) => ({ key: toAPIKeyResponse(key, r.generatedAt), findings })),
  };
}
