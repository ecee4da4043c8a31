import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import type { RawBodyRequest } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { requestMetaOf } from '../../auth/auth.decorators';
import { AnonymousThrottlerGuard } from '../../plans/http/anonymous-throttler.guard';
import { ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { LeakReportsService } from '../application/leak-reports.service';

class ReportedTokenDto {
  @ApiProperty({ description: 'The leaked secret.' })
  token: string;

  @ApiPropertyOptional({ example: 'tollgate_api_key' })
  type?: string;

  @ApiPropertyOptional({ example: 'https://github.com/octo/repo/blob/abc/config.env' })
  url?: string;

  @ApiPropertyOptional({ example: 'content' })
  source?: string;
}

class LeakReportResultDto {
  @ApiProperty({ description: 'SHA-256 (hex) of the reported token.' })
  token_hash: string;

  @ApiProperty({ example: 'tollgate_api_key' })
  token_type: string;

  @ApiProperty({ enum: ['true_positive', 'false_positive'], description: 'true_positive: one of our keys (now disabled).' })
  label: string;
}

/** K9: leaked-key reports in the GitHub secret-scanning partner format, authenticated by their signature (no JWT). */
@ApiTags('api-keys')
@UseGuards(AnonymousThrottlerGuard)
@Controller('api/v1/keys')
export class LeakReportsController {
  constructor(private readonly reports: LeakReportsService) {}

  @Post('leaks')
  @ApiOperation({ summary: 'Leaked-key report (GitHub secret scanning): reported keys are disabled at once, audited and alerted' })
  @ApiHeader({ name: 'Github-Public-Key-Identifier', required: true, description: "Which of the reporter's keys (LEAK_REPORT_KEYS_URL) signed the body" })
  @ApiHeader({ name: 'Github-Public-Key-Signature', required: true, description: 'Base64 ECDSA P-256 SHA-256 signature of the raw body' })
  @ApiBody({ type: [ReportedTokenDto] })
  @ApiOkResponse({ type: [LeakReportResultDto] })
  @ApiProblems(...BODY_PROBLEMS, 'unauthenticated', 'not_found', 'rate_limited', 'service_unavailable', 'internal_error')
  @HttpCode(200)
  receive(@Req() req: RawBodyRequest<FastifyRequest>) {
    const header = (name: string) => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    return this.reports.handle(header('github-public-key-identifier'), header('github-public-key-signature'), req.rawBody, requestMetaOf(req));
  }
}
