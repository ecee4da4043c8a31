import { InvalidationBus, InvalidationKind } from './invalidation-bus';

/**
 * A per-tenant read-through cache kept right by the InvalidationBus: an entry
 * lives `ttlMs` at most (the TTL only bounds a lost broadcast), and is dropped
 * at once when a change of its kind is published, here or on another replica.
 *
 * A lookup that started before an invalidation may have read the old state:
 * its result is returned to its caller (whose request started before the
 * change) but not cached, so the next caller reads again. Every invalidation
 * advances `generation`, read before the lookup and compared after it.
 */
export class TenantCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private generation = 0;

  constructor(
    bus: InvalidationBus,
    kind: InvalidationKind,
    private readonly ttlMs: number,
    private readonly load: (tenantId: string) => Promise<V>,
  ) {
    bus.subscribe(kind, (tenantId) => {
      this.generation++;
      if (tenantId === null) this.entries.clear();
      else this.entries.delete(tenantId);
    });
  }

  async get(tenantId: string): Promise<V> {
    const hit = this.entries.get(tenantId);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const generation = this.generation;
    const value = await this.load(tenantId);
    if (generation === this.generation) this.entries.set(tenantId, { value, at: Date.now() });
    return value;
  }
}
