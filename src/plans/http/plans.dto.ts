import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import type { CreditTransaction } from '../domain/billing.repositories';
import type { Plan } from '../domain/plan';

export function toPlanResponse(p: Plan) {
  return {
    id: p.id,
    name: p.name,
    rate_limits: {
      per_minute: p.rateLimits.perMinute,
      per_hour: p.rateLimits.perHour,
      ...(p.rateLimits.toolCallsPerMinute === undefined ? {} : { tool_calls_per_minute: p.rateLimits.toolCallsPerMinute }),
    },
    quotas: { requests_per_month: p.quotas.requestsPerMonth, tokens_per_month: p.quotas.tokensPerMonth },
    max_keys: p.maxKeys,
    included_credits: p.includedCredits,
    max_key_lifetime_days: p.maxKeyLifetimeDays ?? null,
  };
}

export function toTransactionResponse(t: CreditTransaction) {
  return {
    id: t.id,
    type: t.type,
    amount: t.amount,
    balance_after: t.balanceAfter,
    key_id: t.keyId,
    tool: t.tool,
    reference: t.reference,
    created_at: t.createdAt.toISOString(),
  };
}

export class TransactionsQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: '`next_cursor` of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(20)
  cursor?: string;
}

export class SetPriceDto {
  /** null removes the override (the default price applies again). */
  @ApiProperty({ type: Number, nullable: true, minimum: 0, maximum: 1_000_000, description: 'Credits per call; null removes the override.' })
  @ValidateIf((o: SetPriceDto) => o.price !== null)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  price: number | null;
}

export const TOOL_NAME_PARAM = /^[a-zA-Z0-9_-]{1,64}$/;
