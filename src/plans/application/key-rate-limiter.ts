import type { QuotaInfo } from '../domain/billing.errors';

/** A key's rate-limit windows after one request: the tightest window, or the one that refused it. */
export interface KeyRateLimitState {
  blocked: boolean;
  /** `minute`, `hour` or `tool_call`. */
  window: string;
  limit: number;
  remaining: number;
  /** Seconds until the window restarts, or, when blocked, until the key may try again (Retry-After). */
  resetSeconds: number;
  /** When blocked: the numbers of the refusal (problem+json `quota_info`). */
  quotaInfo?: QuotaInfo;
}

/**
 * The agent rate limits of a key (P2) counted outside an agent HTTP request,
 * e.g. a charged verification (K8). AgentThrottlerGuard implements it, so the
 * windows, their storage (Redis when configured) and their semantics are the
 * agent routes' own.
 */
export abstract class KeyRateLimiter {
  abstract limitKey(tenantId: string, keyId: string, toolCall: boolean): Promise<KeyRateLimitState>;
}
