import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import type { Actor, RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { ValidationFailedError } from '../../shared/domain/domain-error';
import { signPayload } from '../../shared/domain/webhook-signature';
import {
  AlertDelivery,
  AlertRepository,
  AlertSender,
  AlertSettings,
  AlertType,
  backoffSeconds,
  creditsLowKey,
  fellBelowThreshold,
  MAX_ATTEMPTS,
  QUOTA_THRESHOLDS,
  quotaAlertKey,
  quotaAlerts,
  quotaMonth,
  TenantQuotas,
} from '../domain/alerts';
import { hostProblem } from './webhook-target';

export const DISPATCH_INTERVAL_MS = 1_000;
const EXPIRY_SCAN_INTERVAL_MS = 10 * 60_000;
const SEND_TIMEOUT_MS = 5_000;
const SETTINGS_TTL_MS = 5_000;
const QUOTA_CHECK_INTERVAL_MS = 1_000;
/**
 * How long a tenant's quota counters are re-checked after its last admitted call
 * or plan change: long enough for the usage flush (every second, retried when it
 * fails) to add the calls' tokens, and for every replica's cached plan (5 s) to
 * follow a change.
 */
const QUOTA_WATCH_MS = 10_000;
/** Dedupe keys this process knows are queued (so a tenant over 80 % does not cost an INSERT per call). */
const KNOWN_KEYS_MAX = 10_000;

/**
 * P6: signed outbound alerts. Conditions are detected where they happen
 * (admission for requests and credits; for a few seconds after a tenant's
 * calls or plan change, its quota counters, where the usage flush adds tokens;
 * a periodic scan for expiring keys) and queued in an outbox table, once per
 * dedupe key; a dispatcher on every replica claims due rows
 * (SKIP LOCKED) and POSTs them, retrying with backoff. Each attempt is recorded.
 */
@Injectable()
export class AlertsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AlertsService.name);
  private readonly settingsCache = new Map<string, { value: AlertSettings | null; at: number }>();
  private timers: NodeJS.Timeout[] = [];
  private dispatching: Promise<void> | null = null;
  /** Tenants whose quota counters are re-checked, and until when (ms). */
  private readonly quotaWatch = new Map<string, number>();
  private checkingQuotas: Promise<number> | null = null;
  private readonly knownKeys = new Set<string>();

  constructor(
    private readonly repo: AlertRepository,
    private readonly sender: AlertSender,
    private readonly audit: AuditRecorder,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly quotas: TenantQuotas,
  ) {}

  onModuleInit(): void {
    const dispatch = setInterval(() => void this.dispatch(), DISPATCH_INTERVAL_MS);
    const scan = setInterval(() => void this.scanExpiringKeys().catch((e: Error) => this.logger.warn(`expiry scan: ${e.message}`)), EXPIRY_SCAN_INTERVAL_MS);
    const quota = setInterval(() => void this.checkQuotas(), QUOTA_CHECK_INTERVAL_MS);
    dispatch.unref();
    scan.unref();
    quota.unref();
    this.timers = [dispatch, scan, quota];
    // A plan changed below what is already used refuses every call: no admission reports it.
    this.quotas.onPlanChanged((tenantId) => tenantId !== null && this.watchQuota(tenantId));
  }

  async onApplicationShutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.dispatching?.catch(() => undefined);
    await this.checkingQuotas;
  }

  async configure(tenantId: string, input: { url: string; creditsThreshold?: number; keyExpiryDays?: number; rotateSecret?: boolean }, actor: Actor, request: RequestMeta) {
    const url = this.checkUrl(input.url);
    const current = await this.repo.settings(tenantId);
    const secret = !current || input.rotateSecret ? `whsec_${randomBytes(24).toString('base64url')}` : current.secret;
    const settings: AlertSettings = {
      tenantId,
      url,
      secret,
      creditsThreshold: input.creditsThreshold ?? current?.creditsThreshold ?? 10,
      keyExpiryDays: input.keyExpiryDays ?? current?.keyExpiryDays ?? 7,
    };
    await this.repo.saveSettings(settings);
    this.settingsCache.delete(tenantId);
    await this.audit.record({ tenantId, actor, action: 'alerts.configured', target: { type: 'tenant', id: tenantId }, request, metadata: { url, credits_threshold: settings.creditsThreshold, key_expiry_days: settings.keyExpiryDays, secret_rotated: secret !== current?.secret } });
    // The signing secret is shown when it is created or rotated, never again.
    return { settings, secretShown: secret !== current?.secret ? secret : null };
  }

  settings(tenantId: string): Promise<AlertSettings | null> {
    return this.repo.settings(tenantId);
  }

  async remove(tenantId: string, actor: Actor, request: RequestMeta): Promise<boolean> {
    const removed = await this.repo.deleteSettings(tenantId);
    this.settingsCache.delete(tenantId);
    if (removed) await this.audit.record({ tenantId, actor, action: 'alerts.removed', target: { type: 'tenant', id: tenantId }, request });
    return removed;
  }

  deliveries(tenantId: string, limit: number): Promise<AlertDelivery[]> {
    return this.repo.list(tenantId, limit);
  }

  /**
   * Called after every admitted tool call (off the response path): the month's
   * requests at 80 % / 100 % of the plan's quota, credits falling below the
   * tenant's threshold. Tokens are counted after the call (usage flush), so the
   * tenant is also watched for a while (see checkQuotas).
   */
  async afterAdmission(a: { tenantId: string; plan: string; period: Date; requestsUsed: number; requestsLimit: number; balanceBefore: number; balanceAfter: number }): Promise<void> {
    const settings = await this.cachedSettings(a.tenantId);
    if (!settings) return;
    this.watchQuota(a.tenantId);
    const { month } = quotaMonth(a.period);
    for (const q of quotaAlerts(month, a.plan, [{ metric: 'requests', used: a.requestsUsed, limit: a.requestsLimit }])) {
      await this.enqueueOnce(a.tenantId, 'quota.threshold', q.dedupeKey, q.payload);
    }
    if (fellBelowThreshold(a.balanceBefore, a.balanceAfter, settings.creditsThreshold)) {
      // Once per top-up: a refund (a failed call) lifts the balance back over the threshold without re-arming the alert.
      const topUp = await this.repo.lastTopUp(a.tenantId);
      await this.enqueueOnce(a.tenantId, 'credits.low', creditsLowKey(topUp, settings.creditsThreshold), { balance: a.balanceAfter, threshold: settings.creditsThreshold });
    }
  }

  /**
   * One round of quota checks (every second; also called by tests): the month's
   * requests and tokens of each watched tenant against the plan in force now.
   * Catches what no admission reports: tokens added by the usage flush, and a
   * plan changed below what is already used (every call then refused).
   * Resolves with the number of alerts queued.
   */
  checkQuotas(): Promise<number> {
    if (this.checkingQuotas) return this.checkingQuotas;
    this.checkingQuotas = this.checkQuotasOnce()
      .catch((e: Error) => {
        this.logger.warn(`quota alerts: ${e.message}`);
        return 0;
      })
      .finally(() => (this.checkingQuotas = null));
    return this.checkingQuotas;
  }

  private async checkQuotasOnce(): Promise<number> {
    const now = Date.now();
    const tenants = [...this.quotaWatch.keys()];
    if (tenants.length === 0) return 0;
    for (const [tenantId, until] of this.quotaWatch) if (until <= now) this.quotaWatch.delete(tenantId);
    const { month, period } = quotaMonth(this.clock.now());
    const due = (
      await Promise.all(
        tenants.map(async (tenantId) => {
          if (!(await this.cachedSettings(tenantId))) return null;
          const limits = await this.quotas.limitsOf(tenantId);
          // Every threshold of these limits already queued this month: nothing to read.
          const open = (['requests', 'tokens'] as const).some(
            (metric) => limits[metric] > 0 && QUOTA_THRESHOLDS.some((pct) => !this.knownKeys.has(knownKey(tenantId, quotaAlertKey(month, metric, limits[metric], pct)))),
          );
          return open ? { tenantId, limits } : null;
        }),
      )
    ).filter((d) => d !== null);
    if (due.length === 0) return 0;
    const usage = await this.repo.quotaUsage(period, due.map((d) => d.tenantId));
    let queued = 0;
    for (const { tenantId, limits } of due) {
      const u = usage.get(tenantId);
      if (!u) continue;
      const alerts = quotaAlerts(month, limits.plan, [
        { metric: 'requests', used: u.requests, limit: limits.requests },
        { metric: 'tokens', used: u.tokens, limit: limits.tokens },
      ]);
      for (const q of alerts) if (await this.enqueueOnce(tenantId, 'quota.threshold', q.dedupeKey, q.payload)) queued++;
    }
    return queued;
  }

  private watchQuota(tenantId: string): void {
    this.quotaWatch.set(tenantId, Date.now() + QUOTA_WATCH_MS);
  }

  /**
   * K9: a key reported as leaked, queued in the transaction that disables it
   * (so it is never lost), when the tenant has alerts set up. `stateAt` (the
   * key's updated_at) keys the dedupe: repeated reports of a key in the same
   * state alert once; a key re-enabled and leaked again alerts again.
   */
  async keyLeaked(
    k: { tenantId: string; keyId: string; name: string; disabled: boolean; url: string | null; source: string | null; stateAt: Date },
    tx?: TransactionContext,
  ): Promise<boolean> {
    if (!(await this.cachedSettings(k.tenantId))) return false;
    return this.repo.enqueue(
      {
        id: randomUUID(),
        tenantId: k.tenantId,
        type: 'key.leaked',
        dedupeKey: `key_leaked:${k.keyId}:${k.stateAt.toISOString()}`,
        payload: { key_id: k.keyId, name: k.name, disabled: k.disabled, url: k.url, source: k.source },
      },
      tx,
    );
  }

  async scanExpiringKeys(): Promise<number> {
    let queued = 0;
    for (const k of await this.repo.expiringKeys(this.clock.now())) {
      const ok = await this.enqueue(k.tenantId, 'key.expiring', `key_expiring:${k.keyId}:${k.expiresAt.toISOString()}`, { key_id: k.keyId, name: k.name, expires_at: k.expiresAt.toISOString() });
      if (ok) queued++;
    }
    return queued;
  }

  /** One dispatch round (also called by tests): claim due deliveries and send them. */
  dispatch(): Promise<void> {
    if (this.dispatching) return this.dispatching;
    this.dispatching = this.dispatchOnce()
      .catch((e: Error) => this.logger.warn(`alert dispatch: ${e.message}`))
      .finally(() => (this.dispatching = null));
    return this.dispatching;
  }

  private async dispatchOnce(): Promise<void> {
    const due = await this.repo.claimDue(20, 60);
    await Promise.all(due.map((d) => this.deliver(d)));
  }

  private async deliver(d: AlertDelivery): Promise<void> {
    const settings = await this.repo.settings(d.tenantId);
    const attempts = d.attempts + 1;
    if (!settings) {
      await this.repo.markFailedAttempt(d.id, attempts, null, 'alerts are no longer configured', null);
      return;
    }
    const body = JSON.stringify({ id: d.id, type: d.type, tenant_id: d.tenantId, created_at: d.createdAt.toISOString(), data: d.payload });
    const signature = signPayload(settings.secret, Math.floor(this.clock.now().getTime() / 1000), body);
    let status: number | null = null;
    let error = '';
    try {
      status = await this.sender.send(settings.url, body, signature, SEND_TIMEOUT_MS);
      if (status >= 200 && status < 300) {
        await this.repo.markDelivered(d.id, status);
        return;
      }
      error = `HTTP ${status}`;
    } catch (err) {
      error = (err as Error).message.slice(0, 300);
    }
    const next = attempts >= MAX_ATTEMPTS ? null : new Date(this.clock.now().getTime() + backoffSeconds(attempts) * 1000);
    await this.repo.markFailedAttempt(d.id, attempts, status, error, next);
  }

  private async enqueue(tenantId: string, type: AlertType, dedupeKey: string, payload: Record<string, unknown>): Promise<boolean> {
    return this.repo.enqueue({ id: randomUUID(), tenantId, type, dedupeKey, payload });
  }

  /** enqueue(), skipping the database for a dedupe key this process already knows is queued. */
  private async enqueueOnce(tenantId: string, type: AlertType, dedupeKey: string, payload: Record<string, unknown>): Promise<boolean> {
    const known = knownKey(tenantId, dedupeKey);
    if (this.knownKeys.has(known)) return false;
    const queued = await this.enqueue(tenantId, type, dedupeKey, payload);
    this.knownKeys.add(known);
    if (this.knownKeys.size > KNOWN_KEYS_MAX) this.knownKeys.delete(this.knownKeys.values().next().value!);
    return queued;
  }

  private async cachedSettings(tenantId: string): Promise<AlertSettings | null> {
    const hit = this.settingsCache.get(tenantId);
    if (hit && Date.now() - hit.at < SETTINGS_TTL_MS) return hit.value;
    const value = await this.repo.settings(tenantId);
    this.settingsCache.set(tenantId, { value, at: Date.now() });
    return value;
  }

  /**
   * In production alerts go to public https endpoints only: no IP literal outside
   * public unicast (IPv4-mapped and NAT64 forms judged by the address they wrap), no
   * `localhost`, `*.internal`, `*.local`… or single-label name (see webhook-target.ts).
   * A name's addresses are checked when each alert is sent (the sender resolves it,
   * refuses any private address and connects to the addresses it checked).
   * Development and tests may use http and any host (local listeners).
   */
  private checkUrl(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ValidationFailedError([{ field: 'url', message: 'must be an absolute URL' }]);
    }
    if (this.config.production) {
      const problem = url.protocol === 'https:' ? hostProblem(url.hostname) : 'the scheme is not https';
      if (problem) throw new ValidationFailedError([{ field: 'url', message: `must be a public https URL: ${problem}` }]);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ValidationFailedError([{ field: 'url', message: 'must be http(s)' }]);
    if (url.username || url.password) throw new ValidationFailedError([{ field: 'url', message: 'must not contain credentials' }]);
    return url.toString();
  }
}

function knownKey(tenantId: string, dedupeKey: string): string {
  return `${tenantId}\u0000${dedupeKey}`;
}
