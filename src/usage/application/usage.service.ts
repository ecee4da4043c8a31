import { Injectable } from '@nestjs/common';
import { APIKeysService } from '../../api-keys/application/api-keys.service';
import { hasRole, Principal } from '../../auth/principal';
import { SubscriptionsService } from '../../plans/application/subscriptions.service';
import { monthWindow } from '../../plans/domain/plan';
import { Clock } from '../../shared/domain/clock';
import { DomainError, ValidationFailedError } from '../../shared/domain/domain-error';
import { forecastExhaustion, Forecast, Granularity, UsageBucket, UsageRepository } from '../domain/usage';
import { UsageBuffer } from './usage-buffer';

export interface UsageReport {
  buckets: UsageBucket[];
  forecast: Forecast;
}

const MAX_BUCKETS: Record<Granularity, number> = { hour: 24 * 93, day: 800, month: 120 };
const SPAN_MS: Record<Granularity, number> = { hour: 3_600_000, day: 86_400_000, month: 31 * 86_400_000 };

/** U2/U4: usage by key, user, tenant, tool and time bucket, and when the quota runs out. */
@Injectable()
export class UsageService {
  constructor(
    private readonly repo: UsageRepository,
    private readonly buffer: UsageBuffer,
    private readonly keys: APIKeysService,
    private readonly subscriptions: SubscriptionsService,
    private readonly clock: Clock,
  ) {}

  async report(p: Principal, q: { from?: Date; to?: Date; granularity: Granularity; keyId?: string; tool?: string }): Promise<UsageReport> {
    const now = this.clock.now();
    const { start: monthStart, end: monthEnd } = monthWindow(now);
    const from = q.from ?? monthStart;
    const to = q.to ?? now;
    if (to.getTime() <= from.getTime()) throw new ValidationFailedError([{ field: 'to', message: 'must be after from' }]);
    if ((to.getTime() - from.getTime()) / SPAN_MS[q.granularity] > MAX_BUCKETS[q.granularity]) {
      throw new ValidationFailedError([{ field: 'from', message: `the range holds too many ${q.granularity} buckets (max ${MAX_BUCKETS[q.granularity]})` }]);
    }
    // Developers see their own keys only; a key filter must name one of theirs (else 404).
    if (q.keyId) await this.keys.get(p, q.keyId);
    const userId = hasRole(p, 'admin') ? undefined : p.sub;
    if (!hasRole(p, 'admin') && !hasRole(p, 'developer')) throw new DomainError('forbidden', 'Usage is for admins and developers.');
    await this.buffer.flush();
    const buckets = await this.repo.buckets({ tenantId: p.tenantId, from, to, granularity: q.granularity, keyId: q.keyId, userId, tool: q.tool });
    const monthBuckets = await this.repo.buckets({ tenantId: p.tenantId, from: monthStart, to: monthEnd, granularity: 'month' });
    const used = monthBuckets.reduce((n, b) => n + b.requests, 0);
    const { plan } = await this.subscriptions.planFor(p.tenantId);
    return { buckets, forecast: forecastExhaustion(used, plan.quotas.requestsPerMonth, monthStart, monthEnd, now) };
  }

  async forKey(p: Principal, keyId: string) {
    const key = await this.keys.get(p, keyId);
    await this.buffer.flush();
    const totals = await this.repo.totalsForKey(p.tenantId, key.id);
    return { keyId: key.id, ...totals, lastUsedAt: key.lastUsedAt };
  }
}
