import { Injectable } from '@nestjs/common';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import type { APIKey } from '../domain/api-key';

interface Entry {
  key: APIKey | null;
  expiresAt: number;
}

/** How long a verified key (or a confirmed miss) is trusted without PostgreSQL. */
export const KEY_CACHE_TTL_MS = 10_000;
const MAX_ENTRIES = 50_000;

/**
 * In-process cache of key lookups by hash, so the agent hot path does not
 * query PostgreSQL per request. Every change (revoke, disable, rotate, scope)
 * evicts the key here at once and, through the InvalidationBus (Redis pub/sub
 * when configured), on every other replica; the TTL bounds staleness only
 * when a broadcast is lost.
 *
 * A lookup that read its row before a change committed may finish after the
 * change's eviction; storing that row would keep the old state for the whole
 * TTL. So every eviction (by id, by hash, or all of them) advances
 * `generation`, and a miss reads it before going to PostgreSQL and hands it to
 * `set`, which stores nothing when an eviction happened in between (the next
 * request looks the key up again). The counter is global, not per key: an
 * eviction by id cannot name the hash of a lookup still in flight (the id is
 * only known once the row is back), and evictions are rare next to lookups,
 * so the cost is at most a few extra lookups while keys change.
 */
@Injectable()
export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();
  private evictions = 0;

  constructor(private readonly bus: InvalidationBus) {
    bus.subscribe('api_key', (keyId) => (keyId === null ? this.clear() : this.evict(keyId)));
  }

  /** Read before a lookup and pass to `set`: it changes with every eviction. */
  get generation(): number {
    return this.evictions;
  }

  get(hash: string, now: number): APIKey | null | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.byHash.delete(hash);
      return undefined;
    }
    return e.key;
  }

  /**
   * Caches a lookup's result, unless something was evicted since `generation`
   * was read (before the lookup): the result may then predate the change that
   * eviction announced.
   */
  set(hash: string, key: APIKey | null, now: number, generation: number): void {
    if (generation !== this.evictions) return;
    if (this.byHash.size >= MAX_ENTRIES) {
      // Map keeps insertion order: drop the oldest tenth.
      let n = Math.ceil(MAX_ENTRIES / 10);
      for (const k of this.byHash.keys()) {
        if (n-- <= 0) break;
        this.byHash.delete(k);
      }
    }
    this.byHash.set(hash, { key, expiresAt: now + KEY_CACHE_TTL_MS });
    if (key) this.hashById.set(key.id, hash);
  }

  /** Always advances the generation, even when the key is not cached here: a lookup of it may be in flight. */
  evict(keyId: string): void {
    this.evictions++;
    const hash = this.hashById.get(keyId);
    if (hash) this.byHash.delete(hash);
    this.hashById.delete(keyId);
  }

  /** Evicts here and on every replica; call after the change has committed. */
  evictEverywhere(keyId: string): Promise<void> {
    return this.bus.publish({ kind: 'api_key', id: keyId });
  }

  clear(): void {
    this.evictions++;
    this.byHash.clear();
    this.hashById.clear();
  }

  /** A new key's hash may have been cached as a miss; forget that too. */
  evictHash(hash: string): void {
    this.evictions++;
    this.byHash.delete(hash);
  }
}
