import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { IsOmittable } from '../../shared/http/validation';
import { ResourceDto } from '../../api-keys/http/api-key.dto';

export class RateLimitStateDto {
  @ApiProperty({ enum: ['minute', 'hour'], example: 'minute', description: 'The window shown: the one with the fewest requests left, or the one that refused.' })
  window: string;

  @ApiProperty({ example: 60 })
  limit: number;

  @ApiProperty({ example: 59 })
  remaining: number;

  @ApiProperty({ example: 60, description: 'Seconds until the window restarts; when refused, until the key may be used again (Retry-After).' })
  reset_seconds: number;
}

export class BudgetDto {
  @ApiProperty({ example: 'pro' })
  plan: string;

  @ApiProperty({ example: 9_999 })
  requests_remaining: number;

  @ApiProperty({ example: 999_000 })
  tokens_remaining: number;

  @ApiProperty({ example: 995 })
  credits_remaining: number;

  @ApiProperty({ format: 'date-time' })
  reset_at: string;
}

export class VerifyKeyDto {
  @ApiProperty({ description: 'The agent key to check (never logged or echoed).', example: 'tg_live_…' })
  @IsString()
  @MaxLength(256)
  key: string;

  @ApiPropertyOptional({ type: ResourceDto, description: 'Also decide whether the key may use this resource.' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ResourceDto)
  resource?: ResourceDto;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 1_000_000_000,
    example: 5,
    description:
      'Charge this many credits when the key is valid (and allowed the resource): a request in the key\'s rate-limit windows, then one request of ' +
      'the month\'s quota and `cost` credits, atomically, within the key\'s monthly credit cap; refused as `rate_limited` / `quota_exceeded` / ' +
      '`insufficient_credits` (valid: false, nothing charged). ' +
      'Without it nothing is counted or charged.',
  })
  @IsOmittable()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  cost?: number;
}

export class VerifyKeyResponseDto {
  @ApiProperty()
  valid: boolean;

  @ApiProperty({ type: String, nullable: true, enum: ['valid', 'invalid_key', 'expired_key', 'disabled_key', 'revoked_key', 'forbidden_resource', 'rate_limited', 'quota_exceeded', 'insufficient_credits'], description: '`valid`, or why not.' })
  code: string | null;

  @ApiProperty({ type: String, nullable: true })
  key_id: string | null;

  @ApiProperty({ type: String, nullable: true })
  tenant_id: string | null;

  @ApiProperty({ type: String, nullable: true })
  user_id: string | null;

  @ApiProperty({ type: String, nullable: true })
  name: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'free' })
  plan: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  expires_at: string | null;

  @ApiProperty({ type: ResourceDto, nullable: true })
  resource: ResourceDto | null;

  @ApiProperty({ type: Boolean, nullable: true, description: 'Whether the scope allows `resource` (null without one).' })
  allowed: boolean | null;

  @ApiProperty({ type: String, nullable: true, example: 'github__*' })
  matched_rule: string | null;

  @ApiProperty({
    type: BudgetDto,
    nullable: true,
    description: 'With `cost`, once charged: what is left this month (the same numbers as `_meta["io.tollgate/budget"]` after a tool call). null otherwise.',
  })
  remaining: BudgetDto | null;

  @ApiProperty({
    type: RateLimitStateDto,
    nullable: true,
    description: "With `cost`: the key's rate-limit state after this use (the agent routes' own per-minute and per-hour windows). null otherwise.",
  })
  ratelimit: RateLimitStateDto | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'With `cost`, when it was refused: `quota_info`, `window` and `retry_after` (rate_limited), `quota_info` (quota_exceeded), or `balance`, `required` and, for the key\'s cap, `key_cap` and `key_spent` (insufficient_credits).',
  })
  details: Record<string, unknown> | null;
}
