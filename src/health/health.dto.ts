import { ApiProperty } from '@nestjs/swagger';

export class LivenessResponseDto {
  @ApiProperty({ example: 'ok' })
  status: string;
}

const INDICATORS = {
  type: 'object' as const,
  additionalProperties: { type: 'object', properties: { status: { type: 'string', enum: ['up', 'down'] } }, additionalProperties: true },
};

/** Terminus' result: `info` holds the checks that passed, `error` those that failed, `details` all of them. */
export class ReadinessResponseDto {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'], example: 'ok' })
  status: string;

  @ApiProperty({ ...INDICATORS, example: { database: { status: 'up' }, migrations: { status: 'up', pending: false }, redis: { status: 'up' } } })
  info: Record<string, unknown>;

  @ApiProperty({ ...INDICATORS, example: {} })
  error: Record<string, unknown>;

  @ApiProperty({ ...INDICATORS, example: { database: { status: 'up' }, migrations: { status: 'up', pending: false }, redis: { status: 'up' } } })
  details: Record<string, unknown>;
}
