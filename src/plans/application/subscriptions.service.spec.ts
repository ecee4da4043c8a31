import type { AuditRecorder } from '../../audit/application/audit-recorder.service';
import type { AppConfig } from '../../config/app-config';
import { SystemClock } from '../../shared/domain/clock';
import { LocalInvalidationBus } from '../../shared/domain/invalidation-bus';
import type { UnitOfWork } from '../../shared/domain/unit-of-work';
import type { Subscription, SubscriptionRepository } from '../domain/billing.repositories';
import type { CreditsService } from './credits.service';
import { SubscriptionsService } from './subscriptions.service';

/** One subscription row; `find` copies it (as a database read would) and can be held after the read. */
class FakeSubscriptions {
  row: Subscription = { tenantId: 'ten_1', planId: 'pro', status: 'active' };
  reads = 0;
  hold: Promise<void> | null = null;
  async find(): Promise<Subscription | null> {
    this.reads++;
    const copy = { ...this.row };
    if (this.hold) await this.hold;
    return copy;
  }
}

function setup() {
  const subs = new FakeSubscriptions();
  const bus = new LocalInvalidationBus();
  const service = new SubscriptionsService(
    subs as unknown as SubscriptionRepository,
    {} as UnitOfWork,
    {} as AuditRecorder,
    { plansFile: null } as unknown as AppConfig,
    bus,
    {} as CreditsService,
    new SystemClock(),
  );
  /** Holds the next lookup after its read; returns the release. */
  const holdNext = () => {
    let release!: () => void;
    subs.hold = new Promise<void>((r) => (release = r));
    return () => {
      subs.hold = null;
      release();
    };
  };
  return { subs, bus, service, holdNext };
}

describe('SubscriptionsService.planFor cache', () => {
  it('serves a second lookup from the cache', async () => {
    const { subs, service } = setup();
    expect((await service.planFor('ten_1')).plan.id).toBe('pro');
    expect((await service.planFor('ten_1')).plan.id).toBe('pro');
    expect(subs.reads).toBe(1);
  });

  it('does not cache a lookup that read the old plan before a plan change was invalidated', async () => {
    const { subs, bus, service, holdNext } = setup();
    const release = holdNext();
    const inFlight = service.planFor('ten_1');
    await Promise.resolve();
    expect(subs.reads).toBe(1); // read the old row
    subs.row = { tenantId: 'ten_1', planId: 'pro', status: 'canceled' }; // the change commits …
    await bus.publish({ kind: 'tenant_plan', id: 'ten_1' }); // … and is invalidated everywhere
    release();
    expect((await inFlight).plan.id).toBe('pro'); // the lookup that started before may answer the old plan
    expect((await service.planFor('ten_1')).plan.id).toBe('free'); // the next one reads again
    expect(subs.reads).toBe(2);
  });

  it('the same holds when the bus drops everything (Redis reconnection)', async () => {
    const { subs, bus, service, holdNext } = setup();
    const release = holdNext();
    const inFlight = service.planFor('ten_1');
    await Promise.resolve();
    subs.row = { tenantId: 'ten_1', planId: 'free', status: 'active' };
    (bus as unknown as { deliver(kind: string, id: null): void }).deliver('tenant_plan', null);
    release();
    await inFlight;
    expect((await service.planFor('ten_1')).plan.id).toBe('free');
  });
});
