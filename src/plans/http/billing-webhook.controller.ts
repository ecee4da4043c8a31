import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { AnonymousThrottlerGuard } from './anonymous-throttler.guard';
import type { RawBodyRequest } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { requestMetaOf } from '../../auth/auth.decorators';
import { ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { BillingWebhookService } from '../application/billing-webhook.service';
import { BillingWebhookEventDto, BillingWebhookResponseDto } from './plans-response.dto';

/** P5: POST /api/v1/billing/webhook, authenticated by its HMAC signature (no JWT). */
@ApiTags('billing')
@UseGuards(AnonymousThrottlerGuard)
@Controller('api/v1/billing')
export class BillingWebhookController {
  constructor(private readonly webhook: BillingWebhookService) {}

  @Post('webhook')
  @ApiOperation({ summary: 'Billing provider webhook: subscription changes and credit purchases (HMAC-signed)' })
  @ApiHeader({ name: 'Tollgate-Signature', required: true, description: '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with BILLING_WEBHOOK_SECRET' })
  @ApiBody({ type: BillingWebhookEventDto })
  @ApiOkResponse({ type: BillingWebhookResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'unauthenticated', 'not_found', 'rate_limited', 'internal_error')
  @HttpCode(200)
  receive(@Req() req: RawBodyRequest<FastifyRequest>) {
    const signature = req.headers['tollgate-signature'];
    return this.webhook.handle(typeof signature === 'string' ? signature : undefined, req.rawBody, requestMetaOf(req));
  }
}
