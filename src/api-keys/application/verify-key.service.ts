import { Injectable } from '@nestjs/common';
import type { Principal } from '../../auth/principal';
import { SubscriptionsService } from '../../plans/application/subscriptions.service';
import { ResourceType } from '../domain/resource-type';
import { KeyVerifier } from './key-verifier';

export interface VerifyKeyCommand {
  key: string;
  resource?: { type: ResourceType; id: string };
  cost?: number;
}

export type VerifyCode = 'valid' | 'invalid_key' | 'expired_key' | 'disabled_key' | 'revoked_key' | 'forbidden_resource';

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
};

/**
 * K8: a trusted backend asks "is this key valid (for resource R)?". The answer
 * is a value for valid and invalid keys alike; a key of another tenant is
 * simply `invalid_key`, so existence never leaks across tenants.
 */
@Injectable()
export class VerifyKeyService {
  constructor(
    private readonly verifier: KeyVerifier,
    private readonly subscriptions: SubscriptionsService,
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
    };
    const decision = resource ? key.scope.decide(resource.type, resource.id) : null;
    if (!outcome.ok) {
      return { ...base, valid: false, code: outcome.code, allowed: decision?.allowed ?? null, matchedRule: decision?.matched_rule ?? null };
    }
    if (decision && !decision.allowed) {
      return { ...base, valid: false, code: 'forbidden_resource', allowed: false, matchedRule: decision.matched_rule };
    }
    return { ...base, valid: true, code: 'valid', allowed: decision?.allowed ?? null, matchedRule: decision?.matched_rule ?? null };
  }
}
