import type { AppConfig } from '../../config/app-config';
import { NoopMetrics } from '../../observability/metrics';
import { Clock } from '../../shared/domain/clock';
import { LocalInvalidationBus } from '../../shared/domain/invalidation-bus';
import { APIKey } from '../domain/api-key';
import { APIKeyRepository } from '../domain/api-key.repository';
import { PermissionScope } from '../domain/permission-scope';
import { APIKeySecrets } from './api-key-secrets';
import { KeyCache } from './key-cache';
import { KeyVerifier } from './key-verifier';

const NOW = new Date('2025-01-01T00:00:00.000Z');

class FixedClock extends Clock {
  now(): Date {
    return new Date(NOW);
  }
}

/** Holds one row per hash; `findByHash` copies it (as a database read would) and can be held after the read. */
class FakeKeys {
  rows = new Map<string, APIKey>();
  reads = 0;
  hold: Promise<void> | null = null;
  async findByHash(hash: string): Promise<APIKey | null> {
    this.reads++;
    const row = this.rows.get(hash);
    const copy = row ? APIKey.restore(row.toProps()) : null;
    if (this.hold) await this.hold;
    return copy;
  }
  async touch(): Promise<void> {}
}

function setup() {
  const secrets = new APIKeySecrets({ apiKeyPepper: 'unit-test-pepper-0123456789', apiKeyPrefix: 'tg', apiKeyEnv: 'live' } as AppConfig);
  const { token, hash } = secrets.mint();
  const keys = new FakeKeys();
  const key = APIKey.create(
    {
      id: 'key_1',
      tenantId: 'ten_1',
      userId: 'usr_1',
      name: 'ci',
      keyHash: hash,
      start: token.start,
      scope: PermissionScope.parse({ mcp_tool_ids: ['*'] }),
      expiresAt: null,
      metadata: {},
      createdBy: 'usr_admin',
    },
    new Date(NOW.getTime() - 60_000),
  );
  keys.rows.set(hash, key);
  const bus = new LocalInvalidationBus();
  const cache = new KeyCache(bus);
  const verifier = new KeyVerifier(keys as unknown as APIKeyRepository, secrets, new FixedClock(), cache, new NoopMetrics());
  /** What the revocation does: the row changes (commit), then the key is evicted everywhere. */
  const revoke = async () => {
    key.revoke(NOW);
    await bus.publish({ kind: 'api_key', id: key.id });
  };
  return { token: token.value, keys, key, bus, cache, verifier, revoke };
}

describe('KeyVerifier and the key cache', () => {
  it('a second verification is served from the cache', async () => {
    const { token, keys, verifier } = setup();
    expect((await verifier.verify(token)).ok).toBe(true);
    expect((await verifier.verify(token)).ok).toBe(true);
    expect(keys.reads).toBe(1);
  });

  it('a lookup that read the row before a revocation and returns after its eviction does not cache it', async () => {
    const { token, keys, verifier, revoke } = setup();
    let release!: () => void;
    keys.hold = new Promise<void>((r) => (release = r));
    const inFlight = verifier.verify(token);
    await Promise.resolve();
    expect(keys.reads).toBe(1); // the row was read while the key was active
    keys.hold = null;
    await revoke();
    release();
    // The request that started before the revocation may pass …
    expect(await inFlight).toMatchObject({ ok: true });
    // … but the next one reads the row again and is refused.
    expect(await verifier.verify(token)).toMatchObject({ ok: false, code: 'revoked_key' });
    expect(keys.reads).toBe(2);
  });

  it('the same holds when the bus drops everything while the lookup is in flight (Redis reconnection)', async () => {
    const { token, keys, key, bus, verifier } = setup();
    let release!: () => void;
    keys.hold = new Promise<void>((r) => (release = r));
    const inFlight = verifier.verify(token);
    await Promise.resolve();
    keys.hold = null;
    key.revoke(NOW); // a revocation whose message this replica missed
    (bus as unknown as { deliver(kind: string, id: null): void }).deliver('api_key', null);
    release();
    await inFlight;
    expect(await verifier.verify(token)).toMatchObject({ ok: false, code: 'revoked_key' });
  });

  it('an unknown key is not cached as unknown when a key was created while its lookup was in flight', async () => {
    const { token, keys, key, cache, verifier } = setup();
    const row = keys.rows.get(key.keyHash)!;
    keys.rows.delete(key.keyHash);
    let release!: () => void;
    keys.hold = new Promise<void>((r) => (release = r));
    const inFlight = verifier.verify(token);
    await Promise.resolve();
    keys.hold = null;
    keys.rows.set(key.keyHash, row); // the insert commits …
    cache.evictHash(key.keyHash); // … and the creation forgets a cached miss
    release();
    expect(await inFlight).toMatchObject({ ok: false, code: 'invalid_key' });
    expect((await verifier.verify(token)).ok).toBe(true);
  });
});
