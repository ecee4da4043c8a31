import { ApiProperty } from '@nestjs/swagger';

export class UsageBucketDto {
  @ApiProperty({ format: 'date-time' })
  start: string;

  @ApiProperty({ example: 120 })
  requests: number;

  @ApiProperty({ example: 48000 })
  tokens: number;

  @ApiProperty({ example: 120 })
  credits: number;
}

export class UsageForecastDto {
  @ApiProperty({ type: Number, nullable: true, example: 10000, description: 'Monthly request quota (null = unlimited).' })
  limit: number | null;

  @ApiProperty({ example: 3120 })
  used: number;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the quota runs out at the current rate; null if not this month.' })
  runs_out_at: string | null;

  @ApiProperty({ example: 4.2 })
  rate_per_hour: number;
}

export class UsageReportResponseDto {
  @ApiProperty({ enum: ['hour', 'day', 'month'] })
  granularity: string;

  @ApiProperty({ type: [UsageBucketDto] })
  buckets: UsageBucketDto[];

  @ApiProperty({ type: UsageForecastDto })
  forecast: UsageForecastDto;
}

export class KeyUsageResponseDto {
  @ApiProperty({ format: 'uuid' })
  key_id: string;

  @ApiProperty({ example: 120 })
  requests_count: number;

  @ApiProperty({ example: 48000 })
  tokens_used: number;

  @ApiProperty({ example: 120 })
  credits_used: number;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_used_at: string | null;
}
