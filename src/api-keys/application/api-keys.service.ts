import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AlertsService } from '../../alerts/application/alerts.service';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import { actorOf, hasRole, Principal } from '../../auth/principal';
import { TransactionContext, UnitOfWork } from '../../shared/domain/unit-of-work';
import type { RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { DomainError, ValidationFailedError } from '../../shared/domain/domain-error';
import { SubscriptionsService } from '../../plans/application/subscriptions.service';
import { TenantsService } from '../../tenants/application/tenants.service';
import { APIKey, APIKeyStatus } from '../domain/api-key';
import { APIKeyNotFoundError, KeyLimitReachedError, ScopeTooWideError } from '../domain/api-key.errors';
import { APIKeyCursor, APIKeyRepository } from '../domain/api-key.repository';
import { PermissionScope } from '../domain/permission-scope';
import { HYGIENE_FINDINGS, HygieneFinding, hygieneFindings, HygienePolicy } from '../domain/key-hygiene';
import { APIKeySecrets } from './api-key-secrets';
import { KeyCache } from './key-cache';

/** Page size when the hygiene report walks a tenant's keys. */
const HYGIENE_PAGE = 500;

export interface HygieneReport {
  generatedAt: Date;
  plan: string;
  policy: HygienePolicy;
  /** Live keys looked at (active or disabled). */
  live: number;
  counts: Record<HygieneFinding, number>;
  /** Only the keys with at least one finding, newest first. */
  keys: Array<{ key: APIKey; findings: HygieneFinding[] }>;
}

/** Who disables a key reported as leaked (K9), in the audit log. */
const LEAK_REPORTER = { type: 'system', id: 'leak-report' } as const;

export interface CreateAPIKeyCommand {
  name: string;
  permissionScope: unknown;
  expiresAt?: Date | null;
  userId?: string;
  metadata?: Record<string, unknown>;
  /** Credits per calendar month (UTC); null or absent = no cap. */
  monthlyCreditCap?: number | null;
}

export interface UpdateAPIKeyCommand {
  name?: string;
  enabled?: boolean;
  expiresAt?: Date | null;
  permissionScope?: unknown;
  metadata?: Record<string, unknown>;
  /** null lifts the cap; undefined leaves it. */
  monthlyCreditCap?: number | null;
}

export interface ListAPIKeysQuery {
  limit: number;
  cursor?: string;
  userId?: string;
  status?: APIKeyStatus;
  name?: string;
}

export interface APIKeyPage {
  data: APIKey[];
  nextCursor: string | null;
}

/** Longest grace period a rotation may ask for (30 days). */
export const MAX_GRACE_PERIOD_SECONDS = 30 * 24 * 3600;

/**
 * The key lifecycle (K1, K3–K7). Every state change commits together with its
 * audit event; permission rules (own keys for developers, scope no wider than
 * the creator's, per-tenant key limit) are decided here, not in controllers.
 */
@Injectable()
export class APIKeysService {
  constructor(
    private readonly keys: APIKeyRepository,
    private readonly uow: UnitOfWork,
    private readonly secrets: APIKeySecrets,
    private readonly audit: AuditRecorder,
    private readonly tenants: TenantsService,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly cache: KeyCache,
    private readonly subscriptions: SubscriptionsService,
    private readonly alerts: AlertsService,
  ) {}

  async create(principal: Principal, cmd: CreateAPIKeyCommand, request: RequestMeta): Promise<{ key: APIKey; token: string }> {
    const userId = cmd.userId ?? principal.sub;
    if (userId !== principal.sub && !hasRole(principal, 'admin', 'service')) {
      throw new DomainError('forbidden', 'Developers may only create keys for themselves; omit user_id.');
    }
    const scope = PermissionScope.parse(cmd.permissionScope);
    this.assertWithinCreatorScope(principal, scope);
    const now = this.clock.now();
    const { token, hash } = this.secrets.mint();
    const key = APIKey.create(
      {
        id: randomUUID(),
        tenantId: principal.tenantId,
        userId,
        name: cmd.name,
        keyHash: hash,
        start: token.start,
        scope,
        expiresAt: cmd.expiresAt ?? null,
        metadata: cmd.metadata ?? {},
        createdBy: principal.sub,
        monthlyCreditCap: cmd.monthlyCreditCap ?? null,
      },
      now,
    );
    const { plan } = await this.subscriptions.planFor(principal.tenantId);
    const limit = Math.min(plan.maxKeys, this.config.maxKeysPerTenant ?? Number.MAX_SAFE_INTEGER);
    await this.uow.run(async (tx) => {
      // Serialize creations per tenant so the key limit (K6, from the plan) holds under concurrency.
      await this.tenants.lock(principal.tenantId, tx);
      const live = await this.keys.countLive(principal.tenantId, now, tx);
      if (live >= limit) throw new KeyLimitReachedError(limit);
      await this.keys.insert(key, tx);
      await this.record(principal, request, 'api_key.created', key, tx, {
        name: key.name,
        user_id: key.userId,
        start: key.start,
        permission_scope: key.scope.toJSON(),
        expires_at: key.expiresAt?.toISOString() ?? null,
        monthly_credit_cap: key.monthlyCreditCap,
      });
    });
    this.cache.evictHash(hash);
    return { key, token: token.value };
  }

  async list(principal: Principal, query: ListAPIKeysQuery): Promise<APIKeyPage> {
    let userId = query.userId;
    if (!hasRole(principal, 'admin')) {
      if (userId !== undefined && userId !== principal.sub) {
        throw new DomainError('forbidden', 'Developers may only list their own keys.');
      }
      userId = principal.sub;
    }
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const rows = await this.keys.list(
      { tenantId: principal.tenantId, userId, status: query.status, name: query.name, now: this.clock.now() },
      query.limit + 1,
      after,
    );
    const data = rows.slice(0, query.limit);
    const last = data[data.length - 1];
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  /**
   * K10: the tenant's live keys (active or disabled) that have something to
   * fix: no expiry, idle or never used for `idleDays`, no credit cap, or a
   * lifetime beyond the plan's `max_key_lifetime_days`; with the counts.
   */
  async hygiene(principal: Principal, idleDays: number): Promise<HygieneReport> {
    const now = this.clock.now();
    const { plan } = await this.subscriptions.planFor(principal.tenantId);
    const policy: HygienePolicy = { idleDays, maxLifetimeDays: plan.maxKeyLifetimeDays ?? null };
    const live: APIKey[] = [];
    for (const status of ['active', 'disabled'] as const) {
      let after: APIKeyCursor | undefined;
      for (;;) {
        const page = await this.keys.list({ tenantId: principal.tenantId, status, now }, HYGIENE_PAGE, after);
        live.push(...page);
        if (page.length < HYGIENE_PAGE) break;
        const last = page[page.length - 1];
        after = { createdAt: last.createdAt, id: last.id };
      }
    }
    live.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
    const counts = Object.fromEntries(HYGIENE_FINDINGS.map((f) => [f, 0])) as Record<HygieneFinding, number>;
    const flagged: HygieneReport['keys'] = [];
    for (const key of live) {
      const findings = hygieneFindings(key, now, policy);
      for (const f of findings) counts[f]++;
      if (findings.length > 0) flagged.push({ key, findings });
    }
    return { generatedAt: now, plan: plan.id, policy, live: live.length, counts, keys: flagged };
  }

  async get(principal: Principal, id: string): Promise<APIKey> {
    const key = isUuid(id) ? await this.keys.findById(principal.tenantId, id) : null;
    if (!key || !canManage(principal, key)) throw new APIKeyNotFoundError(id);
    return key;
  }

  async update(principal: Principal, id: string, cmd: UpdateAPIKeyCommand, request: RequestMeta): Promise<APIKey> {
    const scope = cmd.permissionScope === undefined ? undefined : PermissionScope.parse(cmd.permissionScope);
    if (scope) this.assertWithinCreatorScope(principal, scope);
    // Evicted again after commit: a verification racing the transaction cannot keep the old state cached.
    const evicted = [id];
    return this.afterCommitEvict(evicted, () => this.uow.run(async (tx) => {
      const key = await this.lockOwned(principal, id, tx);
      const now = this.clock.now();
      if (key.status(now) === 'revoked') throw new DomainError('invalid_state', 'A revoked API key cannot be changed.');
      const changed: string[] = [];
      if (cmd.name !== undefined && cmd.name.trim() !== key.name) {
        key.rename(cmd.name, now);
        changed.push('name');
      }
      if (scope !== undefined) {
        key.changeScope(scope, now);
        changed.push('permission_scope');
      }
      if (cmd.expiresAt !== undefined) {
        key.changeExpiry(cmd.expiresAt, now);
        changed.push('expires_at');
      }
      if (cmd.metadata !== undefined) {
        key.replaceMetadata(cmd.metadata, now);
        changed.push('metadata');
      }
      if (cmd.monthlyCreditCap !== undefined && cmd.monthlyCreditCap !== key.monthlyCreditCap) {
        key.changeCreditCap(cmd.monthlyCreditCap, now);
        changed.push('monthly_credit_cap');
      }
      let toggled: 'api_key.enabled' | 'api_key.disabled' | null = null;
      if (cmd.enabled !== undefined && cmd.enabled !== key.enabled) {
        if (cmd.enabled) key.enable(now);
        else key.disable(now);
        toggled = cmd.enabled ? 'api_key.enabled' : 'api_key.disabled';
      }
      if (changed.length === 0 && toggled === null) return key;
      await this.keys.update(key, tx);
      this.cache.evict(key.id);
      if (changed.length > 0) {
        await this.record(principal, request, 'api_key.updated', key, tx, {
          changed,
          ...(changed.includes('name') ? { name: key.name } : {}),
          ...(scope ? { permission_scope: scope.toJSON() } : {}),
          ...(changed.includes('expires_at') ? { expires_at: key.expiresAt?.toISOString() ?? null } : {}),
          ...(changed.includes('monthly_credit_cap') ? { monthly_credit_cap: key.monthlyCreditCap } : {}),
        });
      }
      if (toggled) await this.record(principal, request, toggled, key, tx, {});
      // The keys this one replaced follow it: disabled, re-scoped or given another cap, it ends their grace
      // period (their secrets, with their own scope and cap, would otherwise keep what was just taken away).
      const followed = toggled === 'api_key.disabled' ? 'successor_disabled' : scope !== undefined ? 'successor_rescoped' : changed.includes('monthly_credit_cap') ? 'successor_recapped' : null;
      if (followed) await this.retirePredecessors(principal, request, key, 'end_grace', followed, tx, evicted);
      return key;
    }));
  }

  /** Revokes now (idempotent: revoking a revoked key changes nothing and writes no event). */
  async revoke(principal: Principal, id: string, request: RequestMeta): Promise<void> {
    const evicted = [id];
    await this.afterCommitEvict(evicted, () => this.uow.run(async (tx) => {
      const key = await this.lockOwned(principal, id, tx);
      if (key.revokedAt !== null) return;
      const now = this.clock.now();
      key.revoke(now);
      await this.keys.update(key, tx);
      this.cache.evict(key.id);
      await this.record(principal, request, 'api_key.revoked', key, tx, {});
      // Revoking a rotated key also revokes the keys it replaced that are still in their grace period,
      // all along its rotation chain: no secret of it may outlive the revocation.
      await this.retirePredecessors(principal, request, key, 'revoke', 'successor_revoked', tx, evicted);
    }));
  }

  async rotate(
    principal: Principal,
    id: string,
    gracePeriodSeconds: number,
    request: RequestMeta,
  ): Promise<{ key: APIKey; token: string; previous: APIKey }> {
    if (!Number.isInteger(gracePeriodSeconds) || gracePeriodSeconds < 0 || gracePeriodSeconds > MAX_GRACE_PERIOD_SECONDS) {
      throw new ValidationFailedError([
        { field: 'grace_period_seconds', message: `must be an integer between 0 and ${MAX_GRACE_PERIOD_SECONDS}` },
      ]);
    }
    const { token, hash } = this.secrets.mint();
    const evicted = [id];
    return this.afterCommitEvict(evicted, () => this.uow.run(async (tx) => {
      const previous = await this.lockOwned(principal, id, tx);
      const now = this.clock.now();
      const next = previous.rotate({ id: randomUUID(), keyHash: hash, start: token.start }, gracePeriodSeconds, now);
      // At most two secrets of a chain work at once: rotating a key ends the grace period of the keys it
      // replaced (so rotations cannot pile up live secrets, each with its own rate-limit windows).
      await this.retirePredecessors(principal, request, previous, 'end_grace', 'rotated_again', tx, evicted);
      // The old row leaves the live-name index (grace_until set) before the successor takes the name.
      await this.keys.update(previous, tx);
      await this.keys.insert(next, tx);
      this.cache.evict(previous.id);
      this.cache.evictHash(hash);
      await this.record(principal, request, 'api_key.rotated', previous, tx, {
        new_key_id: next.id,
        new_start: next.start,
        grace_period_seconds: gracePeriodSeconds,
        grace_until: previous.graceUntil?.toISOString() ?? null,
      });
      return { key: next, token: token.value, previous };
    }));
  }

  /**
   * K9: a reported secret that is one of our keys is disabled at once (not
   * revoked: its owner looks, then rotates or revokes), on every replica, with
   * an `api_key.leaked` audit event and a `key.leaked` alert in the same
   * transaction; what the report said goes in both, never the secret. Returns the key (null when the secret is not ours) and
   * whether this report disabled it.
   */
  async disableLeaked(
    raw: string,
    report: { type: string; url: string | null; source: string | null },
    request: RequestMeta,
  ): Promise<{ key: APIKey; disabled: boolean } | null> {
    const token = this.secrets.parse(raw);
    if (!token) return null;
    const found = await this.keys.findByHash(this.secrets.hash(token.value));
    if (!found) return null;
    return this.afterCommitEvict([found.id], () =>
      this.uow.run(async (tx) => {
        const key = await this.keys.findByIdForUpdate(found.tenantId, found.id, tx);
        if (!key) return null;
        const now = this.clock.now();
        const before = key.status(now);
        const disabled = key.revokedAt === null && key.enabled;
        if (disabled) {
          key.disable(now);
          await this.keys.update(key, tx);
          this.cache.evict(key.id);
        }
        // Queued in this transaction: committed with the disabling, or not at all. A revoked key cannot be used: no alert.
        if (key.revokedAt === null) {
          await this.alerts.keyLeaked(
            { tenantId: key.tenantId, keyId: key.id, name: key.name, disabled, url: report.url, source: report.source, stateAt: key.updatedAt },
            tx,
          );
        }
        await this.audit.record(
          {
            tenantId: key.tenantId,
            actor: LEAK_REPORTER,
            action: 'api_key.leaked',
            target: { type: 'api_key', id: key.id },
            outcome: 'success',
            request,
            metadata: { disabled, status_before: before, reported_type: report.type, url: report.url, source: report.source },
          },
          tx,
        );
        return { key, disabled };
      }),
    );
  }

  /**
   * The keys `key` replaced (its rotation chain) that still work in their
   * grace period: revoked, or their grace period ended now (they are then
   * `expired`), each with its audit event. Their ids join `evicted`.
   */
  private async retirePredecessors(
    principal: Principal,
    request: RequestMeta,
    key: APIKey,
    how: 'revoke' | 'end_grace',
    reason: string,
    tx: TransactionContext,
    evicted: string[],
  ): Promise<void> {
    if (key.rotatedFromId === null) return;
    const now = this.clock.now();
    for (const previous of await this.keys.ancestorsForUpdate(key.tenantId, key.id, tx)) {
      if (!previous.inGrace(now)) continue;
      if (how === 'revoke') previous.revoke(now);
      else previous.endGrace(now);
      await this.keys.update(previous, tx);
      this.cache.evict(previous.id);
      evicted.push(previous.id);
      await (how === 'revoke'
        ? this.record(principal, request, 'api_key.revoked', previous, tx, { reason, successor_id: key.id })
        : this.record(principal, request, 'api_key.updated', previous, tx, {
            changed: ['grace_until'],
            grace_until: previous.graceUntil?.toISOString() ?? null,
            reason,
            successor_id: key.id,
          }));
    }
  }

  /** After the transaction, the keys are evicted here and on every replica (InvalidationBus). */
  private async afterCommitEvict<T>(ids: string[], work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      for (const id of ids) await this.cache.evictEverywhere(id);
    }
  }

  private assertWithinCreatorScope(principal: Principal, scope: PermissionScope): void {
    const reasons = scope.excessOver(principal.scope);
    if (reasons.length > 0) throw new ScopeTooWideError(reasons);
  }

  private async lockOwned(principal: Principal, id: string, tx: TransactionContext): Promise<APIKey> {
    const key = isUuid(id) ? await this.keys.findByIdForUpdate(principal.tenantId, id, tx) : null;
    if (!key || !canManage(principal, key)) throw new APIKeyNotFoundError(id);
    return key;
  }

  private record(
    principal: Principal,
    request: RequestMeta,
    action: string,
    key: APIKey,
    tx: TransactionContext,
    metadata: Record<string, unknown>,
  ) {
    return this.audit.record(
      {
        tenantId: key.tenantId,
        actor: actorOf(principal),
        action,
        target: { type: 'api_key', id: key.id },
        outcome: 'success',
        request,
        metadata,
      },
      tx,
    );
  }
}

/** Admins manage every key of their tenant; everyone else only their own (others' keys are "not found"). */
function canManage(principal: Principal, key: APIKey): boolean {
  return key.tenantId === principal.tenantId && (hasRole(principal, 'admin') || key.userId === principal.sub);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isUuid(id: string): boolean {
  return UUID.test(id);
}

function encodeCursor(key: APIKey): string {
  return Buffer.from(JSON.stringify([key.createdAt.toISOString(), key.id])).toString('base64url');
}

function decodeCursor(cursor: string): APIKeyCursor {
  const invalid = new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
  if (cursor.length > 200) throw invalid;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    const date = typeof createdAt === 'string' ? new Date(createdAt) : null;
    if (!date || Number.isNaN(date.getTime()) || typeof id !== 'string' || !isUuid(id)) throw invalid;
    return { createdAt: date, id };
  } catch {
    throw invalid;
  }
}
