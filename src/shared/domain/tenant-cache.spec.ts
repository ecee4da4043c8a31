import { LocalInvalidationBus } from './invalidation-bus';
import { TenantCache } from './tenant-cache';

describe('TenantCache', () => {
  function setup() {
    const bus = new LocalInvalidationBus();
    let version = 1;
    let reads = 0;
    let hold: Promise<void> | null = null;
    const cache = new TenantCache(bus, 'tenant_prices', 60_000, async (tenantId) => {
      reads++;
      const read = `${tenantId}@${version}`;
      if (hold) await hold;
      return read;
    });
    return {
      bus,
      cache,
      reads: () => reads,
      change: () => version++,
      holdNext: () => {
        let release!: () => void;
        hold = new Promise<void>((r) => (release = r));
        return () => {
          hold = null;
          release();
        };
      },
    };
  }

  it('reads once, then serves from memory until its kind is invalidated (one tenant, or all)', async () => {
    const s = setup();
    expect(await s.cache.get('t1')).toBe('t1@1');
    s.change();
    expect(await s.cache.get('t1')).toBe('t1@1');
    expect(s.reads()).toBe(1);
    await s.bus.publish({ kind: 'tenant_plan', id: 't1' }); // another kind: nothing dropped
    expect(await s.cache.get('t1')).toBe('t1@1');
    await s.bus.publish({ kind: 'tenant_prices', id: 't1' });
    expect(await s.cache.get('t1')).toBe('t1@2');
    s.change();
    (s.bus as unknown as { deliver(kind: string, id: string | null): void }).deliver('tenant_prices', null);
    expect(await s.cache.get('t1')).toBe('t1@3');
    expect(s.reads()).toBe(3);
  });

  it('does not keep a read that an invalidation overtook: its caller gets it, the next caller reads again', async () => {
    const s = setup();
    const release = s.holdNext();
    const inFlight = s.cache.get('t1');
    s.change();
    await s.bus.publish({ kind: 'tenant_prices', id: 't1' });
    release();
    expect(await inFlight).toBe('t1@1');
    expect(await s.cache.get('t1')).toBe('t1@2');
  });
});
