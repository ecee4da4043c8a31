/**
 * The per-call admission transaction alone (CallAdmission.admit: quota
 * UPDATE + locked credit account + ledger row, one PostgreSQL transaction),
 * in this process, for one tenant at concurrency 1 and 50. Every admission of
 * a tenant locks the same credit_accounts row, so their transactions run one
 * after another: admissions/s at concurrency 50 is the ceiling of one
 * tenant's tools/call rate, whatever the rest of the path costs.
 */
import { DataSource } from 'typeorm';
import { CallAdmission } from '../../src/plans/application/call-admission.service';
import { CreditsService } from '../../src/plans/application/credits.service';
import { SubscriptionsService } from '../../src/plans/application/subscriptions.service';
import {
  PostgresAdmissionStore,
  TypeOrmCreditLedgerRepository,
  TypeOrmQuotaCounterRepository,
  TypeOrmSubscriptionRepository,
  TypeOrmToolPriceRepository,
} from '../../src/plans/infrastructure/typeorm-billing.repositories';
import type { AppConfig } from '../../src/config/app-config';
import { dataSourceOptions } from '../../src/database/data-source';
import { TypeOrmUnitOfWork } from '../../src/database/typeorm-unit-of-work';
import { SystemClock } from '../../src/shared/domain/clock';
import { LocalInvalidationBus } from '../../src/shared/domain/invalidation-bus';

export interface AdmissionCost {
  concurrency: number;
  admits: number;
  admitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export async function measureAdmission(databaseUrl: string, plansFile: string, tenantId: string, keyId: string, n = 2_000): Promise<AdmissionCost[]> {
  const ds = new DataSource(dataSourceOptions(databaseUrl, { extra: { max: 20, application_name: 'tollgate-bench-admission' } } as never));
  await ds.initialize();
  try {
    const config = { plansFile, defaultToolPrice: 1 } as AppConfig;
    const uow = new TypeOrmUnitOfWork(ds);
    // The audit recorder and invalidation bus are only used by plan changes, which this never makes.
    const noBus = { subscribe: () => undefined, publish: async () => undefined };
    const Subs = SubscriptionsService as unknown as new (...a: unknown[]) => SubscriptionsService;
    const subscriptions = new Subs(new TypeOrmSubscriptionRepository(ds), uow, null, config, noBus);
    const credits = new CreditsService(new TypeOrmCreditLedgerRepository(ds), new TypeOrmToolPriceRepository(ds), uow, null as never, config, new LocalInvalidationBus());
    // Trees with usage alerts pass an AlertsService last; a no-op one keeps the admission itself measured.
    const noAlerts = new Proxy({}, { get: () => () => Promise.resolve(undefined) });
    const Admission = CallAdmission as unknown as new (...a: unknown[]) => CallAdmission;
    const admission = new Admission(subscriptions, credits, new TypeOrmQuotaCounterRepository(ds), uow, new SystemClock(), noAlerts, new PostgresAdmissionStore(ds, config));
    const out: AdmissionCost[] = [];
    for (const concurrency of [1, 10, 50]) {
      for (let i = 0; i < 50; i++) await admission.admit(tenantId, keyId, 'bench__admission'); // warm-up
      const times: number[] = [];
      let left = n;
      const t0 = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left-- > 0) {
            const s = process.hrtime.bigint();
            await admission.admit(tenantId, keyId, 'bench__admission');
            times.push(Number(process.hrtime.bigint() - s) / 1e6);
          }
        }),
      );
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      times.sort((a, b) => a - b);
      const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))] * 100) / 100;
      out.push({ concurrency, admits: n, admitsPerSec: Math.round(n / wallS), p50Ms: at(0.5), p99Ms: at(0.99) });
    }
    return out;
  } finally {
    await ds.destroy();
  }
}
