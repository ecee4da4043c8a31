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
 */
@Injectable()
export class KeyCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();

  constructor(private readonly bus: InvalidationBus) {
    bus.subscribe('api_key', (keyId) => (keyId === null ? this.clear() : this.evict(keyId)));
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

  set(hash: string, key: APIKey | null, now: number): void {
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

  evict(keyId: string): void {
    const hash = this.hashById.get(keyId);
    if (hash) this.byHash.delete(hash);
    this.hashById.delete(keyId);
  }

  /** Evicts here and on every replica; call after the change has committed. */
  evictEverywhere(keyId: string): Promise<void> {
    return this.bus.publish({ kind: 'api_key', id: keyId });
  }

  clear(): void {
    this.byHash.clear();
    this.hashById.clear();
  }

  /** A new key's hash may have been cached as a miss; forget that too. */
  evictHash(hash: string): void {
    this.byHash.delete(hash);
  }
}
