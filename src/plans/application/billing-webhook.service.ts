import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { DomainError, FieldError, NotFoundError, ValidationFailedError } from '../../shared/domain/domain-error';
import { UnitOfWork } from '../../shared/domain/unit-of-work';
import { BillingEventRepository } from '../domain/billing.repositories';
import { SUBSCRIPTION_STATUSES, SubscriptionStatus } from '../domain/plan';
import { verifySignature } from '../../shared/domain/webhook-signature';
import { CreditsService } from './credits.service';
import { SubscriptionsService } from './subscriptions.service';

export type WebhookEvent =
  | { id: string; type: 'subscription.updated'; data: { tenant_id: string; plan: string; status: SubscriptionStatus } }
  | { id: string; type: 'credits.purchased'; data: { tenant_id: string; amount: number } };

export interface WebhookOutcome {
  id: string;
  status: 'processed' | 'duplicate';
}

const BILLING: Actor = { type: 'service', id: 'billing-webhook' };
const TENANT = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * P5: signed events from the billing backend (payments happen there). The
 * event row and its effect commit together; a replayed id changes nothing.
 */
@Injectable()
export class BillingWebhookService {
  constructor(
    private readonly config: AppConfig,
    private readonly events: BillingEventRepository,
    private readonly subscriptions: SubscriptionsService,
    private readonly credits: CreditsService,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
  ) {}

  async handle(signature: string | undefined, rawBody: Buffer | undefined, request: RequestMeta): Promise<WebhookOutcome> {
    const secret = this.config.billingWebhookSecret;
    if (!secret) throw new NotFoundError('The billing webhook (BILLING_WEBHOOK_SECRET is not set)');
    const check = verifySignature(secret, signature, rawBody ?? Buffer.alloc(0), Math.floor(this.clock.now().getTime() / 1000));
    if (!check.ok) {
      const why = { missing: 'no Tollgate-Signature header', malformed: 'malformed Tollgate-Signature header', expired: 'timestamp outside the 5-minute tolerance (replay?)', mismatch: 'signature does not match' }[check.reason];
      throw new DomainError('unauthenticated', `Webhook refused: ${why}.`);
    }
    const event = parseEvent(rawBody!);
    const applied = await this.uow.run(async (tx) => {
      const fresh = await this.events.record({ id: event.id, type: event.type, tenantId: event.data.tenant_id, payload: event }, tx);
      if (!fresh) return false;
      if (event.type === 'subscription.updated') {
        await this.subscriptions.change(event.data.tenant_id, event.data.plan, event.data.status, BILLING, request, event.id, tx);
      } else {
        await this.credits.add(event.data.tenant_id, 'purchase', event.data.amount, `event:${event.id}`, BILLING, request, tx);
      }
      return true;
    });
    // After the commit: a replica that read the plan during the transaction would otherwise keep the old one.
    if (applied && event.type === 'subscription.updated') await this.subscriptions.announce(event.data.tenant_id);
    return { id: event.id, status: applied ? 'processed' : 'duplicate' };
  }
}

/** Strict parse of the two documented event shapes; anything else is a 422 listing every problem. */
function parseEvent(raw: Buffer): WebhookEvent {
  let body: any;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new DomainError('malformed_request', 'The body is not valid JSON.');
  }
  const errors: FieldError[] = [];
  if (typeof body?.id !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(body.id)) errors.push({ field: 'id', message: 'must be 1-128 printable characters' });
  const data = body?.data;
  if (data === null || typeof data !== 'object') errors.push({ field: 'data', message: 'must be an object' });
  else if (typeof data.tenant_id !== 'string' || !TENANT.test(data.tenant_id)) errors.push({ field: 'data.tenant_id', message: 'must be a tenant id' });
  if (body?.type === 'subscription.updated') {
    if (typeof data?.plan !== 'string') errors.push({ field: 'data.plan', message: 'must be a plan id' });
    if (!SUBSCRIPTION_STATUSES.includes(data?.status)) errors.push({ field: 'data.status', message: `must be one of ${SUBSCRIPTION_STATUSES.join(', ')}` });
  } else if (body?.type === 'credits.purchased') {
    if (!Number.isSafeInteger(data?.amount) || data.amount <= 0) errors.push({ field: 'data.amount', message: 'must be a positive integer' });
  } else {
    errors.push({ field: 'type', message: 'must be subscription.updated or credits.purchased' });
  }
  if (errors.length) throw new ValidationFailedError(errors, 'The webhook event is invalid.');
  return body as WebhookEvent;
}
