import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PROBLEM_STATUS } from './problem-status';

/** One invalid field of a `validation_failed` problem. */
export class FieldErrorDto {
  @ApiProperty({ example: 'name' })
  field: string;

  @ApiProperty({ example: 'name must be longer than or equal to 1 characters' })
  message: string;
}

/** The one error envelope (RFC 9457 problem+json with Tollgate's stable `code`). */
export class ProblemDto {
  @ApiProperty({ example: 'urn:tollgate:problem:not_found', description: 'urn:tollgate:problem:<code>' })
  type: string;

  @ApiProperty({ example: 'Not found' })
  title: string;

  @ApiProperty({ example: 404 })
  status: number;

  @ApiProperty({ example: 'API key was not found.' })
  detail: string;

  @ApiProperty({ enum: Object.keys(PROBLEM_STATUS), example: 'not_found', description: 'Stable machine code (docs/errors.md).' })
  code: string;

  @ApiPropertyOptional({ example: '/api/v1/api-keys/4b0c…', description: 'The request path.' })
  instance?: string;

  @ApiPropertyOptional({ example: '6f1c2b1e-3d4a-4d7e-9b8f-0a1b2c3d4e5f', description: 'Echo of X-Request-Id.' })
  request_id?: string;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'validation_failed only.' })
  errors?: FieldErrorDto[];
}
