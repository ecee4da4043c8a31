import type { AuditRecorder } from '../../audit/application/audit-recorder.service';
import type { AppConfig } from '../../config/app-config';
import { Clock } from '../../shared/domain/clock';
import { AlertDelivery, AlertRepository, AlertSender, AlertSettings, TenantQuotas } from '../domain/alerts';
import { AlertsService } from './alerts.service';

type Queued = Pick<AlertDelivery, 'id' | 'tenantId' | 'type' | 'dedupeKey' | 'payload'>;

/** The outbox (unique per tenant and dedupe key), the ledger's latest top-up and the quota counters. */
class FakeAlertRepository extends AlertRepository {
  rows: Queued[] = [];
  inserts = 0;
  topUp: string | null = 'grant-1';
  counters = new Map<string, { requests: number; tokens: number }>();
  counterReads = 0;
  constructor(private readonly s: AlertSettings) {
    super();
  }
  async settings(tenantId: string) {
    return tenantId === this.s.tenantId ? this.s : null;
  }
  async saveSettings() {}
  async deleteSettings() {
    return false;
  }
  async enqueue(d: Queued) {
    this.inserts++;
    if (this.rows.some((r) => r.tenantId === d.tenantId && r.dedupeKey === d.dedupeKey)) return false;
    this.rows.push(d);
    return true;
  }
  async claimDue() {
    return [];
  }
  async markDelivered() {}
  async markFailedAttempt() {}
  async list() {
    return [];
  }
  async expiringKeys() {
    return [];
  }
  async lastTopUp() {
    return this.topUp;
  }
  async quotaUsage(_period: Date, tenantIds: string[]) {
    this.counterReads++;
    return new Map([...this.counters].filter(([id]) => tenantIds.includes(id)));
  }
  ofType(type: string) {
    return this.rows.filter((r) => r.type === type);
  }
}

class FakeQuotas extends TenantQuotas {
  limits = { plan: 'q5', requests: 5, tokens: 1_000_000 };
  private handlers: ((tenantId: string | null) => void)[] = [];
  async limitsOf() {
    return this.limits;
  }
  onPlanChanged(handler: (tenantId: string | null) => void) {
    this.handlers.push(handler);
  }
  change(limits: FakeQuotas['limits'], tenantId = 'acme') {
    this.limits = limits;
    for (const h of this.handlers) h(tenantId);
  }
}

const NOW = new Date('2025-03-14T12:00:00Z');
const PERIOD = new Date('2025-03-01T00:00:00Z');

function setup(creditsThreshold = 1_000) {
  const repo = new FakeAlertRepository({ tenantId: 'acme', url: 'https://example.com/hook', secret: 'whsec_x', creditsThreshold, keyExpiryDays: 7 });
  const quotas = new FakeQuotas();
  const clock: Clock = { now: () => NOW };
  const service = new AlertsService(repo, {} as AlertSender, {} as AuditRecorder, clock, { production: false } as AppConfig, quotas);
  service.onModuleInit();
  const admitted = (requestsUsed: number, balanceBefore: number, balanceAfter: number, plan = quotas.limits) =>
    service.afterAdmission({ tenantId: 'acme', plan: plan.plan, period: PERIOD, requestsUsed, requestsLimit: plan.requests, balanceBefore, balanceAfter });
  return { repo, quotas, service, admitted };
}

describe('AlertsService', () => {
  let current: AlertsService | null = null;
  const track = <T extends { service: AlertsService }>(s: T) => ((current = s.service), s);
  afterEach(async () => {
    await current?.onApplicationShutdown();
    current = null;
  });

  it('sends credits.low once while refunds lift the balance back over the threshold; a top-up re-arms it', async () => {
    const { repo, admitted } = track(setup(1_000));
    // Five failed calls: charged 1000 → 999 (below), refunded back to 1000, again and again.
    for (let i = 1; i <= 5; i++) await admitted(i, 1_000, 999);
    expect(repo.ofType('credits.low')).toEqual([expect.objectContaining({ payload: { balance: 999, threshold: 1_000 } })]);
    // A purchase lifts it over the threshold: the next fall alerts again, once.
    repo.topUp = 'purchase-1';
    await admitted(6, 1_000, 999);
    await admitted(7, 1_000, 999);
    expect(repo.ofType('credits.low')).toHaveLength(2);
    // Already below: no crossing, no alert.
    await admitted(8, 999, 998);
    expect(repo.ofType('credits.low')).toHaveLength(2);
  });

  it('alerts the 80 % / 100 % of requests once per limit, and again after an upgrade', async () => {
    const { repo, quotas, admitted } = track(setup(0));
    for (let used = 1; used <= 5; used++) await admitted(used, 100, 99);
    quotas.change({ plan: 'q10', requests: 10, tokens: 1_000_000 });
    for (let used = 6; used <= 10; used++) await admitted(used, 100, 99);
    expect(repo.ofType('quota.threshold').map((r) => r.payload)).toEqual([
      { plan: 'q5', metric: 'requests', percent: 80, used: 4, limit: 5, period: '2025-03' },
      { plan: 'q5', metric: 'requests', percent: 100, used: 5, limit: 5, period: '2025-03' },
      { plan: 'q10', metric: 'requests', percent: 80, used: 8, limit: 10, period: '2025-03' },
      { plan: 'q10', metric: 'requests', percent: 100, used: 10, limit: 10, period: '2025-03' },
    ]);
  });

  it('does not write to the outbox on every call once a threshold is queued', async () => {
    const { repo, admitted } = track(setup(0));
    for (let used = 1; used <= 5; used++) await admitted(used, 100, 99);
    const inserts = repo.inserts;
    await admitted(5, 100, 99);
    await admitted(5, 100, 99);
    expect(repo.inserts).toBe(inserts);
  });

  it('alerts 100 % when the plan changes below what is already used (every call then refused)', async () => {
    const { repo, quotas, service, admitted } = track(setup(0));
    quotas.limits = { plan: 'q10', requests: 10, tokens: 1_000_000 };
    for (let used = 1; used <= 8; used++) await admitted(used, 100, 99);
    repo.counters.set('acme', { requests: 8, tokens: 100 });
    quotas.change({ plan: 'q5', requests: 5, tokens: 1_000_000 });
    expect(await service.checkQuotas()).toBe(2);
    expect(repo.ofType('quota.threshold').map((r) => [r.payload.plan, r.payload.percent, r.payload.used, r.payload.limit])).toEqual([
      ['q10', 80, 8, 10],
      ['q5', 80, 8, 5],
      ['q5', 100, 8, 5],
    ]);
  });

  it('learns of a downgrade from the plan change alone (the month’s calls went through another replica)', async () => {
    const { repo, quotas, service } = track(setup(0));
    quotas.limits = { plan: 'q10', requests: 10, tokens: 1_000_000 };
    repo.counters.set('acme', { requests: 8, tokens: 100 });
    expect(await service.checkQuotas()).toBe(0); // not watched: nothing read
    expect(repo.counterReads).toBe(0);
    quotas.change({ plan: 'q5', requests: 5, tokens: 1_000_000 });
    expect(await service.checkQuotas()).toBe(2);
    expect(repo.ofType('quota.threshold').map((r) => [r.payload.plan, r.payload.percent, r.payload.used, r.payload.limit])).toEqual([
      ['q5', 80, 8, 5],
      ['q5', 100, 8, 5],
    ]);
  });

  it('alerts the token quota from the counters the usage flush adds to', async () => {
    const { repo, quotas, service, admitted } = track(setup(0));
    quotas.limits = { plan: 't200', requests: 1_000, tokens: 200 };
    await admitted(1, 100, 99);
    repo.counters.set('acme', { requests: 1, tokens: 170 });
    expect(await service.checkQuotas()).toBe(1);
    repo.counters.set('acme', { requests: 2, tokens: 230 });
    expect(await service.checkQuotas()).toBe(1);
    expect(await service.checkQuotas()).toBe(0);
    expect(repo.ofType('quota.threshold').map((r) => r.payload)).toEqual([
      { plan: 't200', metric: 'tokens', percent: 80, used: 170, limit: 200, period: '2025-03' },
      { plan: 't200', metric: 'tokens', percent: 100, used: 230, limit: 200, period: '2025-03' },
    ]);
  });

  it('checks only tenants that were admitted or changed plan, and only while something is left to send', async () => {
    const { repo, quotas, service, admitted } = track(setup(0));
    expect(await service.checkQuotas()).toBe(0);
    expect(repo.counterReads).toBe(0);
    quotas.limits = { plan: 'tiny', requests: 1, tokens: 1 };
    await admitted(1, 100, 99); // requests: 80 % and 100 % queued at once
    repo.counters.set('acme', { requests: 1, tokens: 5 });
    expect(await service.checkQuotas()).toBe(2); // tokens
    const reads = repo.counterReads;
    expect(await service.checkQuotas()).toBe(0);
    expect(repo.counterReads).toBe(reads); // every threshold of these limits known: no read
  });
});
