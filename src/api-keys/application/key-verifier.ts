import { Injectable } from '@nestjs/common';
import { Metrics } from '../../observability/metrics';
import { Clock } from '../../shared/domain/clock';
import { APIKey } from '../domain/api-key';
import { APIKeyRepository } from '../domain/api-key.repository';
import { APIKeySecrets } from './api-key-secrets';
import { KeyCache } from './key-cache';

export type KeyRefusal = 'invalid_key' | 'expired_key' | 'disabled_key' | 'revoked_key';

/** Expected refusals are values (unkey's discipline); exceptions are kept for real failures. */
export type KeyVerification = { ok: true; key: APIKey } | { ok: false; code: KeyRefusal; key: APIKey | null };

/** How stale last_used_at may get before a verification writes it again. */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * Who is calling (A3, K5): format and checksum first (no database for typos
 * and forgeries), then one indexed lookup by peppered hash. A well-formed
 * unknown key costs the same hashing and lookup as a real one.
 */
@Injectable()
export class KeyVerifier {
  constructor(
    private readonly keys: APIKeyRepository,
    private readonly secrets: APIKeySecrets,
    private readonly clock: Clock,
    private readonly cache: KeyCache,
    private readonly metrics: Metrics,
  ) {}

  /** `tenantId`: only keys of this tenant count; another tenant's key is `invalid_key` and is not touched. */
  async verify(raw: string, tenantId?: string): Promise<KeyVerification> {
    const result = await this.check(raw, tenantId);
    this.metrics.keyVerified(result.ok ? 'valid' : result.code);
    return result;
  }

  private async check(raw: string, tenantId?: string): Promise<KeyVerification> {
    const token = this.secrets.parse(raw);
    if (!token) return { ok: false, code: 'invalid_key', key: null };
    // The lookup by HMAC is the comparison: equal hashes are found by the unique
    // index, so no byte-by-byte compare of the secret happens in this process.
    const hash = this.secrets.hash(token.value);
    const now = this.clock.now();
    let key = this.cache.get(hash, now.getTime());
    this.metrics.keyCacheLookup(key !== undefined);
    if (key === undefined) {
      // Read before the lookup: a change evicted while it is in flight must not be re-cached (see KeyCache).
      const generation = this.cache.generation;
      key = await this.keys.findByHash(hash);
      this.cache.set(hash, key, now.getTime(), generation);
    }
    if (!key || (tenantId !== undefined && key.tenantId !== tenantId)) return { ok: false, code: 'invalid_key', key: null };
    switch (key.status(now)) {
      case 'revoked':
        return { ok: false, code: 'revoked_key', key };
      case 'expired':
        return { ok: false, code: 'expired_key', key };
      case 'disabled':
        return { ok: false, code: 'disabled_key', key };
      case 'active':
        this.touch(key, now);
        return { ok: true, key };
    }
  }

  /** Best-effort, throttled, off the response path: a failure here must not fail the caller. */
  private touch(key: APIKey, now: Date): void {
    const last = key.lastUsedAt?.getTime() ?? 0;
    if (now.getTime() - last < TOUCH_INTERVAL_MS) return;
    key.touch(now);
    this.keys.touch(key.id, now).catch(() => undefined);
  }
}
