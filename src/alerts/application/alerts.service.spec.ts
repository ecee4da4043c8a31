import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { AppConfig } from '../../config/app-config';
import { ValidationFailedError } from '../../shared/domain/domain-error';
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

describe('AlertsService.configure: where alerts may go (F8)', () => {
  const actor = { type: 'user', id: 'admin-1' } as const;
  const request = { ip: '127.0.0.1', userAgent: 'jest', requestId: 'r-1' };
  /** A real production AppConfig, as the security review built it. */
  const production = () =>
    AppConfig.fromEnvironment({
      NODE_ENV: 'production',
      JWT_JWKS_URI: 'https://idp.example.com/jwks.json',
      JWT_ISSUER: 'https://idp.example.com/',
      JWT_AUDIENCE: 'tollgate',
      API_KEY_PEPPER: 'prod-pepper-0123456789',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'alerts-spec-')),
    });
  const service = (config: AppConfig) => {
    const repo = new FakeAlertRepository({ tenantId: 'other', url: 'https://example.com/hook', secret: 'whsec_x', creditsThreshold: 10, keyExpiryDays: 7 });
    const audit = { record: async () => undefined } as unknown as AuditRecorder;
    return new AlertsService(repo, {} as AlertSender, audit, { now: () => NOW }, config, new FakeQuotas());
  };
  const refusal = async (svc: AlertsService, url: string) => {
    try {
      await svc.configure('acme', { url }, actor, request);
    } catch (e) {
      if (e instanceof ValidationFailedError) return e.errors;
      throw e;
    }
    return null;
  };

  it.each([
    // The review's findings.
    'https://[::ffff:169.254.169.254]/latest/meta-data/',
    'https://[::ffff:127.0.0.1]:8443/',
    'https://[::]:8443/',
    'https://100.100.100.200/latest/meta-data/',
    'https://metadata.google.internal/computeMetadata/v1/',
    // Other spellings of the same hosts.
    'https://[0:0:0:0:0:ffff:a9fe:a9fe]/',
    'https://[64:ff9b::169.254.169.254]/',
    'https://[::127.0.0.1]/',
    'https://[::1]/',
    'https://0x7f.1/',
    'https://2130706433/',
    'https://0.0.0.0/',
    'https://100.64.0.1/',
    'https://198.18.0.1/',
    'https://192.0.2.10/',
    'https://224.0.0.1/',
    'https://255.255.255.255/',
    'https://[fd00::1]/',
    'https://[fe80::1]/',
    'https://[ff02::1]/',
    'https://[2001:db8::1]/',
    'https://localhost/',
    'https://LOCALHOST./',
    'https://api.localhost/',
    'https://metadata.google.internal./',
    'https://db.corp.internal/',
    'https://printer.local/',
    'https://metadata/computeMetadata/v1/',
    'http://hooks.example.com/',
  ])('refuses %s in production (422 validation_failed on url)', async (url) => {
    const errors = await refusal(service(production()), url);
    expect(errors).toEqual([{ field: 'url', message: expect.stringMatching(/^must be a public https URL/) }]);
  });

  it.each(['https://hooks.example.com/tollgate', 'https://8.8.8.8/hook', 'https://[2606:4700:4700::1111]/hook', 'https://[::ffff:8.8.8.8]/hook', 'https://hooks.example.com./x'])(
    'accepts %s in production',
    async (url) => {
      expect(await refusal(service(production()), url)).toBeNull();
    },
  );

  it.each(['http://127.0.0.1:4000/hooks', 'http://localhost:4000/hooks', 'http://[::ffff:127.0.0.1]:4000/', 'https://10.0.0.5/hook'])(
    'keeps accepting %s outside production (tests and npm start deliver to local listeners)',
    async (url) => {
      expect(await refusal(service({ production: false } as AppConfig), url)).toBeNull();
    },
  );
});
