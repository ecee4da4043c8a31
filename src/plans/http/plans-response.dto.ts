import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

class RateLimitsDto {
  @ApiProperty({ example: 60 })
  per_minute: number;

  @ApiProperty({ example: 1000 })
  per_hour: number;

  @ApiPropertyOptional({ example: 30, description: 'stricter per-minute window for tool calls (the expensive route); absent = none' })
  tool_calls_per_minute?: number;
}

class QuotasDto {
  @ApiProperty({ type: Number, nullable: true, example: 10000, description: 'null = unlimited' })
  requests_per_month: number | null;

  @ApiProperty({ type: Number, nullable: true, example: null, description: 'null = unlimited' })
  tokens_per_month: number | null;
}

export class PlanResponseDto {
  @ApiProperty({ example: 'free' })
  id: string;

  @ApiProperty({ example: 'Free' })
  name: string;

  @ApiProperty({ type: RateLimitsDto })
  rate_limits: RateLimitsDto;

  @ApiProperty({ type: QuotasDto })
  quotas: QuotasDto;

  @ApiProperty({ type: Number, nullable: true, example: 5 })
  max_keys: number | null;

  @ApiProperty({ example: 100 })
  included_credits: number;

  @ApiProperty({ type: Number, nullable: true, example: 90, description: 'Longest key lifetime the key hygiene report accepts (null: no maximum).' })
  max_key_lifetime_days: number | null;
}

export class PlanListResponseDto {
  @ApiProperty({ type: [PlanResponseDto] })
  data: PlanResponseDto[];
}

export class CreditBalanceResponseDto {
  @ApiProperty({ example: 250 })
  balance: number;

  @ApiProperty({ example: 'pro', description: 'The plan in force (free when the subscription lapsed).' })
  plan: string;

  @ApiProperty({ type: String, nullable: true, example: 'pro' })
  subscribed_plan: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'active' })
  subscription_status: string | null;
}

export class CreditTransactionResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ enum: ['grant', 'purchase', 'charge', 'refund'] })
  type: string;

  @ApiProperty({ example: -1, description: 'Negative for charges.' })
  amount: number;

  @ApiProperty({ example: 249 })
  balance_after: number;

  @ApiProperty({ type: String, nullable: true })
  key_id: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'github__create_issue' })
  tool: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'event:evt_123' })
  reference: string | null;

  @ApiProperty({ format: 'date-time' })
  created_at: string;
}

export class CreditTransactionPageResponseDto {
  @ApiProperty({ type: [CreditTransactionResponseDto] })
  data: CreditTransactionResponseDto[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  next_cursor: string | null;
}

export class PricesResponseDto {
  @ApiProperty({ example: 1, description: 'Credits a call costs unless the tool is priced.' })
  default: number;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { github__create_issue: 5 } })
  tools: Record<string, number>;
}

/** POST /api/v1/billing/webhook body: one of two event types, signed with Tollgate-Signature. */
export class BillingWebhookEventDto {
  @ApiProperty({ example: 'evt_123', description: 'Idempotency key: a repeated id is acknowledged and not applied again.' })
  id: string;

  @ApiProperty({ enum: ['subscription.updated', 'credits.purchased'] })
  type: string;

  @ApiProperty({
    type: 'object',
    properties: {
      tenant_id: { type: 'string' },
      plan: { type: 'string', description: 'subscription.updated' },
      status: { type: 'string', enum: ['active', 'past_due', 'canceled'], description: 'subscription.updated' },
      amount: { type: 'integer', minimum: 1, description: 'credits.purchased' },
    },
    required: ['tenant_id'],
    example: { tenant_id: 'acme', plan: 'pro', status: 'active' },
  })
  data: Record<string, unknown>;
}

export class BillingWebhookResponseDto {
  @ApiProperty({ example: 'evt_123' })
  id: string;

  @ApiPropertyOptional({ enum: ['processed', 'duplicate'] })
  status: 'processed' | 'duplicate';
}
