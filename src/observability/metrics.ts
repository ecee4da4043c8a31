/**
 * The port application code reports to (key verifier, call pipeline): plain
 * methods, no Prometheus types, so callers stay framework-free and tests can
 * pass a no-op. The Prometheus adapter is `PrometheusMetrics`.
 */
export type KeyVerificationOutcome = 'valid' | 'invalid_key' | 'expired_key' | 'disabled_key' | 'revoked_key';
export type RejectionReason = 'rate_limited' | 'quota_exceeded' | 'insufficient_credits';

export abstract class Metrics {
  abstract keyVerified(outcome: KeyVerificationOutcome): void;
  abstract keyCacheLookup(hit: boolean): void;
  abstract rejected(reason: RejectionReason): void;
  abstract creditsCharged(amount: number): void;
  /** One upstream tools/call: `errorCode` null when the upstream answered, `cancelled` when the caller gave up on it. */
  abstract upstreamCall(upstream: string, seconds: number, errorCode: string | null): void;
}

/** For unit tests and tools that build services by hand. */
export class NoopMetrics extends Metrics {
  keyVerified(): void {}
  keyCacheLookup(): void {}
  rejected(): void {}
  creditsCharged(): void {}
  upstreamCall(): void {}
}
