/**
 * Per-upstream circuit breaker (issue 8 §4): after `threshold` consecutive
 * failures (unreachable, timeout) the circuit opens and calls fail fast,
 * without reaching the upstream and without being charged; after `cooldownMs`
 * one trial call is let through (half-open): success closes the circuit,
 * failure opens it again. An upstream that answers, even with an error of its
 * own, is alive. Hand-written (a dozen lines of state) rather than a library:
 * the gateway needs the decision before admission, which wrapper-style
 * breakers (opossum and the like) do not expose.
 */
export interface CircuitState {
  state: 'closed' | 'open' | 'half_open';
  failures: number;
  retryInMs: number;
}

interface Entry {
  failures: number;
  openedAt: number | null;
  trialInFlight: boolean;
}

export class CircuitBreaker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly threshold = 5,
    readonly cooldownMs = 30_000,
  ) {}

  /**
   * May a call go to this upstream now? `false`: no (open); `'pass'`: yes
   * (closed); `'trial'`: yes, as the half-open trial, which this call now holds.
   */
  allow(id: string, now: number): false | 'pass' | 'trial' {
    const e = this.entries.get(id);
    if (!e || e.openedAt === null) return 'pass';
    if (now - e.openedAt < this.cooldownMs || e.trialInFlight) return false;
    e.trialInFlight = true;
    return 'trial';
  }

  /**
   * The trial allow() gave a call ended without a verdict on the upstream
   * (the call was refused by admission, or its caller cancelled it): handed
   * back, for the next call to take. Only for a call that got `'trial'`: a
   * call let through while the circuit was closed holds no trial.
   */
  abandon(id: string): void {
    const e = this.entries.get(id);
    if (e) e.trialInFlight = false;
  }

  success(id: string): void {
    this.entries.delete(id);
  }

  failure(id: string, now: number): void {
    const e = this.entries.get(id) ?? { failures: 0, openedAt: null, trialInFlight: false };
    e.failures++;
    if (e.trialInFlight || e.failures >= this.threshold) {
      e.openedAt = now;
      e.trialInFlight = false;
    }
    this.entries.set(id, e);
  }

  /** How many upstreams have an open (or half-open) circuit, and how many are failing but still closed. */
  summary(now: number): { open: number; failing: number } {
    let open = 0;
    let failing = 0;
    for (const id of this.entries.keys()) {
      if (this.state(id, now).state === 'closed') failing++;
      else open++;
    }
    return { open, failing };
  }

  state(id: string, now: number): CircuitState {
    const e = this.entries.get(id);
    if (!e || e.openedAt === null) return { state: 'closed', failures: e?.failures ?? 0, retryInMs: 0 };
    const wait = this.cooldownMs - (now - e.openedAt);
    return { state: wait > 0 && !e.trialInFlight ? 'open' : 'half_open', failures: e.failures, retryInMs: Math.max(0, wait) };
  }
}
