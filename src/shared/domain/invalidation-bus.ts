/**
 * What a replica may hold in memory that another replica's change makes stale:
 * a key's cached verification (by key id), a tenant's tool catalog, a
 * tenant's plan, a tenant's tool prices.
 */
export type InvalidationKind = 'api_key' | 'tenant_catalog' | 'tenant_plan' | 'tenant_prices';
export const INVALIDATION_KINDS: readonly InvalidationKind[] = ['api_key', 'tenant_catalog', 'tenant_plan', 'tenant_prices'];

export interface Invalidation {
  kind: InvalidationKind;
  id: string;
}

/**
 * Called with the id to drop, or with `null` when every entry of the kind may be
 * stale (the bus lost messages, e.g. after its Redis connection came back).
 */
export type InvalidationHandler = (id: string | null) => void;

/**
 * Port: tells every replica (this one included, synchronously) to drop a cached
 * entry. Publish after the change has committed. Without Redis it is local only;
 * with Redis it fans out on a pub/sub channel.
 */
export abstract class InvalidationBus {
  private readonly handlers = new Map<InvalidationKind, InvalidationHandler[]>();

  /** Drops the entry here at once, then on every other replica; never throws. */
  abstract publish(message: Invalidation): Promise<void>;

  subscribe(kind: InvalidationKind, handler: InvalidationHandler): void {
    this.handlers.set(kind, [...(this.handlers.get(kind) ?? []), handler]);
  }

  /** Runs this replica's handlers (adapters call it for local and received messages). */
  protected deliver(kind: InvalidationKind, id: string | null): void {
    for (const handler of this.handlers.get(kind) ?? []) handler(id);
  }
}

/** One process, no Redis: publishing is evicting here. */
export class LocalInvalidationBus extends InvalidationBus {
  async publish(message: Invalidation): Promise<void> {
    this.deliver(message.kind, message.id);
  }
}

/** Parses a message received from another replica; null when it is not one. */
export function parseInvalidation(raw: string): (Invalidation & { origin: string }) | null {
  try {
    const m = JSON.parse(raw) as Record<string, unknown>;
    if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > 200) return null;
    if (typeof m.origin !== 'string' || !INVALIDATION_KINDS.includes(m.kind as InvalidationKind)) return null;
    return { kind: m.kind as InvalidationKind, id: m.id, origin: m.origin };
  } catch {
    return null;
  }
}
