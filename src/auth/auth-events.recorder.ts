import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { AuditRecorder, RecordAuditInput } from '../audit/application/audit-recorder.service';
import type { Actor, RequestMeta } from '../shared/domain/actor';
import { clipText } from '../shared/domain/text';

/**
 * The audit chain of authentication failures whose tenant is unknown (a key
 * that does not exist, a malformed credential) or not trustworthy (a
 * management JWT that failed verification: its tenant claim is the caller's
 * word). OAuth access tokens naming this tenant are refused; management
 * tenants come from the operator's identity provider, so operators read this
 * chain with an auditor JWT whose tenant claim is `_unknown`.
 */
export const UNKNOWN_TENANT = '_unknown';

/** Who failed to authenticate, when nothing about the caller can be trusted. */
export const ANONYMOUS: Actor = { type: 'user', id: 'anonymous' };

/** Events waiting to be written; past this (a flood of bad credentials) events are dropped and counted. */
const MAX_QUEUED = 1_000;
/** How long shutdown waits for queued events (the database may be the reason we are stopping). */
const SHUTDOWN_DRAIN_MS = 5_000;

export type CredentialKind = 'none' | 'api_key' | 'oauth_token' | 'management_jwt';

export interface AuthFailure {
  /** The tenant when it is known for sure (an existing key's, a verified token's); null = UNKNOWN_TENANT. */
  tenantId: string | null;
  actor?: Actor;
  /** A stable code: missing_key, invalid_key, expired_key, token_expired, wrong_audience, … */
  reason: string;
  credential: CredentialKind;
  /** `POST /mcp`: the route pattern, never the raw URL (no query strings). */
  route: string;
  request: RequestMeta;
  /** Non-secret context (key id, key status…). Never a token, key or hash. */
  metadata?: Record<string, unknown>;
}

export interface AuthorizationDenial {
  tenantId: string;
  actor: Actor;
  reason: string;
  route: string;
  request: RequestMeta;
  metadata?: Record<string, unknown>;
}

/**
 * L1 for the guards: `auth.failed` (outcome failure) and `authz.denied`
 * (outcome denied). Writes leave the response path and go through one queue
 * written by one worker: an audit append holds a pooled connection while it
 * waits for its tenant's chain lock, and a burst of bad credentials (all on
 * the UNKNOWN_TENANT chain, where appends are serial anyway) must neither
 * slow refusals nor take the pool from paying traffic. Past MAX_QUEUED
 * waiting events the newest are dropped, counted and logged. Success paths
 * write nothing. The queue is drained on shutdown.
 */
@Injectable()
export class AuthEventsRecorder implements BeforeApplicationShutdown {
  private readonly logger = new Logger('AuthEvents');
  private readonly queue: RecordAuditInput[] = [];
  private worker: Promise<void> | null = null;
  private droppedTotal = 0;

  constructor(private readonly audit: AuditRecorder) {}

  /** Events not written because the queue was full (since start). */
  get dropped(): number {
    return this.droppedTotal;
  }

  authFailed(f: AuthFailure): void {
    this.enqueue({
      tenantId: f.tenantId ?? UNKNOWN_TENANT,
      actor: f.actor ?? ANONYMOUS,
      action: 'auth.failed',
      target: { type: 'route', id: f.route },
      outcome: 'failure',
      request: f.request,
      metadata: { reason: f.reason, credential: f.credential, ...(f.metadata ?? {}) },
    });
  }

  authzDenied(d: AuthorizationDenial): void {
    this.enqueue({
      tenantId: d.tenantId,
      actor: d.actor,
      action: 'authz.denied',
      target: { type: 'route', id: d.route },
      outcome: 'denied',
      request: d.request,
      metadata: { reason: d.reason, ...(d.metadata ?? {}) },
    });
  }

  /**
   * Any other refusal worth auditing that must stay off the response path
   * (tool calls denied by scope, refused by quota or credits, failed upstream):
   * same queue, same guarantees.
   */
  recordLater(event: RecordAuditInput): void {
    this.enqueue(event);
  }

  /** Resolves when every queued event has been written (tests; shutdown). */
  async drain(): Promise<void> {
    while (this.worker) await this.worker;
  }

  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), SHUTDOWN_DRAIN_MS);
    });
    const result = await Promise.race([this.drain().then(() => 'drained' as const), timeout]);
    clearTimeout(timer);
    if (result === 'timeout') {
      const lost = this.queue.splice(0).length;
      this.droppedTotal += lost;
      this.logger.warn(`shutdown: ${lost} queued audit event(s) not written`);
    }
  }

  private enqueue(event: RecordAuditInput): void {
    if (this.queue.length >= MAX_QUEUED) {
      this.droppedTotal++;
      if (this.droppedTotal === 1 || this.droppedTotal % 1000 === 0) {
        this.logger.warn(`audit of ${event.action} dropped under load (${this.droppedTotal} so far)`);
      }
      return;
    }
    this.queue.push(event);
    this.kick();
  }

  private kick(): void {
    if (this.worker) return;
    this.worker = this.work().finally(() => {
      this.worker = null;
      // An event queued after the loop's last shift but before this callback.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async work(): Promise<void> {
    for (let event = this.queue.shift(); event; event = this.queue.shift()) {
      try {
        await this.audit.record(event);
      } catch (err) {
        this.logger.error(`audit of ${event.action} failed: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }
}

/** `METHOD /route/pattern` of a Fastify request (the pattern, so no ids or query strings). */
export function routeOf(request: { method: string; url: string; routeOptions?: { url?: string } }): string {
  const pattern = request.routeOptions?.url ?? request.url.split('?')[0];
  return clipText(`${request.method} ${pattern}`, 200);
}
