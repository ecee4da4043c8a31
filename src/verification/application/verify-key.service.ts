import { Injectable } from '@nestjs/common';
import { KeyVerifier } from '../../api-keys/application/key-verifier';
import type { APIKey } from '../../api-keys/domain/api-key';
import { ResourceType } from '../../api-keys/domain/resource-type';
import type { Principal } from '../../auth/principal';
import { Budget, CallAdmission } from '../../plans/application/call-admission.service';
import { KeyRateLimiter, KeyRateLimitState } from '../../plans/application/key-rate-limiter';
import { SubscriptionsService } from '../../plans/application/subscriptions.service';
import { InsufficientCreditsError, QuotaExceededError } from '../../plans/domain/billing.errors';
import { Clock } from '../../shared/domain/clock';
import { UsageBuffer } from '../../usage/application/usage-buffer';
import { Metrics } from '../../observability/metrics';

export interface VerifyKeyCommand {
  key: string;
  resource?: { type: ResourceType; id: string };
  /** Credits to charge when the key is valid (and allowed): also one request of the month's quota. */
  cost?: number;
}

export type VerifyCode =
  | 'valid'
  | 'invalid_key'
  | 'expired_key'
  | 'disabled_key'
  | 'revoked_key'
  | 'forbidden_resource'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'insufficient_credits';

export interface VerifyKeyResult {
  valid: boolean;
  code: VerifyCode;
  keyId: string | null;
  tenantId: string | null;
  userId: string | null;
  name: string | null;
  plan: string | null;
  expiresAt: Date | null;
  resource: { type: ResourceType; id: string } | null;
  allowed: boolean | null;
  matchedRule: string | null;
  /** With `cost`: what the charge left (charged), or null when nothing was charged. */
  remaining: Budget | null;
  /** With `cost`: the key's rate-limit state after this use (its tightest window, or the one that refused it). */
  rateLimit: KeyRateLimitState | null;
  /** With `cost`, when it was refused: the numbers behind the refusal (quota_info, or balance / required / key cap). */
  details: Record<string, unknown> | null;
}

const NOTHING = {
  keyId: null,
  tenantId: null,
  userId: null,
  name: null,
  plan: null,
  expiresAt: null,
  allowed: null,
  matchedRule: null,
  remaining: null,
  rateLimit: null,
  details: null,
};

/** What a charged verification is called in the ledger and in usage: `verify`, or `verify:<type>:<id>` for a resource. */
export function chargeLabel(resource: { type: ResourceType; id: string } | null): string {
  return resource ? `verify:${resource.type}:${resource.id}` : 'verify';
}

/**
 * K8: a trusted backend asks "is this key valid (for resource R), and charge
 * it N". The answer is a value for valid and invalid keys alike; a key of
 * another tenant is simply `invalid_key`, so existence never leaks across
 * tenants. With `cost`, a valid and allowed key is used the way an agent
 * request that calls a tool uses it: a request in the key's rate-limit
 * windows (P2, the agent routes' own), then one atomic admission (a request of
 * the month's quota, N credits from the tenant's balance within the key's
 * monthly cap, a ledger row); a refusal (`rate_limited`, `quota_exceeded`,
 * `insufficient_credits`) is `valid: false` and charges nothing. Without
 * `cost` nothing is counted or charged.
 */
@Injectable()
export class VerifyKeyService {
  constructor(
    private readonly verifier: KeyVerifier,
    private readonly subscriptions: SubscriptionsService,
    private readonly admission: CallAdmission,
    private readonly rateLimits: KeyRateLimiter,
    private readonly usage: UsageBuffer,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  async verify(principal: Principal, cmd: VerifyKeyCommand): Promise<VerifyKeyResult> {
    const resource = cmd.resource ?? null;
    const outcome = await this.verifier.verify(cmd.key, principal.tenantId);
    const key = outcome.key;
    if (!key || key.tenantId !== principal.tenantId) {
      return { valid: false, code: 'invalid_key', resource, ...NOTHING };
    }
    // The plan cache (evicted on every plan change, on every replica) instead of a query per verification.
    const { subscribedPlanId } = await this.subscriptions.planFor(key.tenantId);
    const base = {
      keyId: key.id,
      tenantId: key.tenantId,
      userId: key.userId,
      name: key.name,
      plan: subscribedPlanId,
      expiresAt: key.expiresAt,
      resource,
      remaining: null,
      rateLimit: null,
      details: null,
    };
    const decision = resource ? key.scope.decide(resource.type, resource.id) : null;
    const allowed = decision?.allowed ?? null;
    const matchedRule = decision?.matched_rule ?? null;
    if (!outcome.ok) {
      return { ...base, valid: false, code: outcome.code, allowed, matchedRule };
    }
    if (decision && !decision.allowed) {
      return { ...base, valid: false, code: 'forbidden_resource', allowed: false, matchedRule };
    }
    if (cmd.cost === undefined) return { ...base, valid: true, code: 'valid', allowed, matchedRule };
    return { ...base, allowed, matchedRule, ...(await this.charge(key, resource, cmd.cost)) };
  }

  private async charge(
    key: APIKey,
    resource: { type: ResourceType; id: string } | null,
    cost: number,
  ): Promise<Pick<VerifyKeyResult, 'valid' | 'code' | 'remaining' | 'rateLimit' | 'details'>> {
    // Not a tool call through the gateway: the per-minute and per-hour windows, not the plan's tool_call window.
    const rateLimit = await this.rateLimits.limitKey(key.tenantId, key.id, false);
    if (rateLimit.blocked) {
      this.metrics.rejected('rate_limited');
      return { valid: false, code: 'rate_limited', remaining: null, rateLimit, details: { quota_info: rateLimit.quotaInfo, window: rateLimit.window, retry_after: rateLimit.resetSeconds } };
    }
    const label = chargeLabel(resource);
    try {
      const admitted = await this.admission.admit(key.tenantId, key.id, label, key.monthlyCreditCap, cost);
      this.usage.record({ tenantId: key.tenantId, keyId: key.id, userId: key.userId, tool: label, at: this.clock.now(), requests: 1, tokens: 0, credits: admitted.price });
      this.metrics.creditsCharged(admitted.price);
      return { valid: true, code: 'valid', remaining: this.admission.budget(admitted), rateLimit, details: null };
    } catch (err) {
      if (err instanceof QuotaExceededError || err instanceof InsufficientCreditsError) {
        this.metrics.rejected(err.code as 'quota_exceeded' | 'insufficient_credits');
        return { valid: false, code: err.code as VerifyCode, remaining: null, rateLimit, details: err.details ?? null };
      }
      throw err;
    }
  }
}
