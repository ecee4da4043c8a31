import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { KeyVerificationOutcome, Metrics, RejectionReason } from './metrics';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every series Tollgate exposes at /metrics, in a registry of its own (one per
 * app, so several apps in one test process do not collide). Labels are bounded:
 * routes are templates (`/api/v1/api-keys/:id`), never raw URLs; upstreams are
 * the tenant-registered names.
 */
@Injectable()
export class PrometheusMetrics extends Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'tollgate_http_requests_total',
    help: 'HTTP requests by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'tollgate_http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly httpInFlight = new Gauge({
    name: 'tollgate_http_requests_in_flight',
    help: 'HTTP requests being served.',
    registers: [this.registry],
  });

  readonly keyVerifications = new Counter({
    name: 'tollgate_key_verifications_total',
    help: 'API key verifications by outcome (valid, invalid_key, expired_key, disabled_key, revoked_key).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly keyCacheLookups = new Counter({
    name: 'tollgate_key_cache_lookups_total',
    help: 'Key cache lookups by result (hit, miss).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly rejections = new Counter({
    name: 'tollgate_rejections_total',
    help: 'Requests refused by rate limit, quota or credit balance.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly credits = new Counter({
    name: 'tollgate_credits_charged_total',
    help: 'Credits charged for tool calls the upstream served.',
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'tollgate_upstream_call_duration_seconds',
    help: 'Upstream tools/call latency by upstream and outcome (ok, error, cancelled by the caller).',
    labelNames: ['upstream', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'tollgate_upstream_errors_total',
    help: 'Upstream tools/call failures by upstream and code (upstream_error, upstream_timeout).',
    labelNames: ['upstream', 'code'] as const,
    registers: [this.registry],
  });

  private hits = 0;
  private lookups = 0;

  constructor() {
    super();
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
    // Every known label value starts at 0, so dashboards and rate() see the series before the first event.
    for (const outcome of ['valid', 'invalid_key', 'expired_key', 'disabled_key', 'revoked_key'] as const) this.keyVerifications.inc({ outcome }, 0);
    for (const result of ['hit', 'miss']) this.keyCacheLookups.inc({ result }, 0);
    for (const reason of ['rate_limited', 'quota_exceeded', 'insufficient_credits'] as const) this.rejections.inc({ reason }, 0);
    this.credits.inc(0);
    this.gauge('tollgate_key_cache_hit_ratio', 'Share of key lookups answered by the in-process cache since start (0 before the first lookup).', () =>
      this.lookups === 0 ? 0 : this.hits / this.lookups,
    );
  }

  /** A gauge read on scrape (e.g. the usage buffer's depth). */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A counter whose total another component keeps (read on scrape, e.g. admission statements sent). */
  counterFrom(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  keyVerified(outcome: KeyVerificationOutcome): void {
    this.keyVerifications.inc({ outcome });
  }

  keyCacheLookup(hit: boolean): void {
    this.lookups++;
    if (hit) this.hits++;
    this.keyCacheLookups.inc({ result: hit ? 'hit' : 'miss' });
  }

  rejected(reason: RejectionReason): void {
    this.rejections.inc({ reason });
  }

  creditsCharged(amount: number): void {
    if (amount > 0) this.credits.inc(amount);
  }

  upstreamCall(upstream: string, seconds: number, errorCode: string | null): void {
    // A call its caller cancelled says nothing about the upstream: timed apart, not counted as an error.
    const outcome = errorCode === null ? 'ok' : errorCode === 'cancelled' ? 'cancelled' : 'error';
    this.upstreamDuration.observe({ upstream, outcome }, seconds);
    if (outcome === 'error') this.upstreamErrors.inc({ upstream, code: errorCode! });
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }
}
