import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import type { RawBodyRequest } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { requestMetaOf } from '../../auth/auth.decorators';
import { BillingWebhookService } from '../application/billing-webhook.service';

/** P5: POST /api/v1/billing/webhook, authenticated by its HMAC signature (no JWT). */
@Controller('api/v1/billing')
export class BillingWebhookController {
  constructor(private readonly webhook: BillingWebhookService) {}

  @Post('webhook')
  @HttpCode(200)
  receive(@Req() req: RawBodyRequest<FastifyRequest>) {
    const signature = req.headers['tollgate-signature'];
    return this.webhook.handle(typeof signature === 'string' ? signature : undefined, req.rawBody, requestMetaOf(req));
  }
}
