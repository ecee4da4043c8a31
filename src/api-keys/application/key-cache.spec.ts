import { LocalInvalidationBus } from '../../shared/domain/invalidation-bus';
import { APIKey } from '../domain/api-key';
import { PermissionScope } from '../domain/permission-scope';
import { KEY_CACHE_TTL_MS, KeyCache } from './key-cache';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');

function key(id = 'key_1', keyHash = 'h1'): APIKey {
  return APIKey.create(
    {
      id,
      tenantId: 'ten_1',
      userId: 'usr_1',
      name: id,
      keyHash,
      start: 'tg_live_abcd',
      scope: PermissionScope.parse({ mcp_tool_ids: ['*'] }),
      expiresAt: null,
      metadata: {},
      createdBy: 'usr_admin',
    },
    new Date(T0),
  );
}

function setup() {
  const bus = new LocalInvalidationBus();
  return { bus, cache: new KeyCache(bus) };
}

describe('KeyCache', () => {
  it('keeps a lookup for the TTL when nothing was evicted while it was in flight', () => {
    const { cache } = setup();
    const g = cache.generation;
    cache.set('h1', key(), T0, g);
    cache.set('h2', null, T0, g);
    expect(cache.get('h1', T0 + KEY_CACHE_TTL_MS - 1)?.id).toBe('key_1');
    expect(cache.get('h2', T0)).toBeNull();
    expect(cache.get('h1', T0 + KEY_CACHE_TTL_MS)).toBeUndefined();
  });

  describe('a lookup is not stored when an eviction happened since its generation was read', () => {
    const cases: [string, (cache: KeyCache, bus: LocalInvalidationBus) => unknown][] = [
      // The key was not cached here yet: the eviction by id cannot find its hash, and must still count.
      ['evict(id) of a key not cached here', (cache) => cache.evict('key_1')],
      ['evictHash (a key was created or rotated)', (cache) => cache.evictHash('h1')],
      ['clear', (cache) => cache.clear()],
      ['a broadcast for the key (another replica revoked it)', (_cache, bus) => bus.publish({ kind: 'api_key', id: 'key_1' })],
      ['the bus dropping everything (Redis reconnection)', (_cache, bus) => (bus as unknown as { deliver(k: string, id: null): void }).deliver('api_key', null)],
    ];
    it.each(cases)('%s', (_name, evict) => {
      const { cache, bus } = setup();
      const g = cache.generation;
      // … the lookup reads the row (still active) …
      evict(cache, bus);
      // … and comes back after the eviction.
      cache.set('h1', key(), T0, g);
      cache.set('h9', null, T0, g);
      expect(cache.get('h1', T0)).toBeUndefined();
      expect(cache.get('h9', T0)).toBeUndefined();
      // The next lookup, which reads the generation after the eviction, is cached again.
      cache.set('h1', key(), T0, cache.generation);
      expect(cache.get('h1', T0)?.id).toBe('key_1');
    });
  });

  it('a late lookup does not overwrite a fresher one stored after the eviction', () => {
    const { cache } = setup();
    const stale = cache.generation;
    cache.evict('key_1');
    const fresh = key();
    fresh.revoke(new Date(T0));
    cache.set('h1', fresh, T0, cache.generation);
    cache.set('h1', key(), T0, stale);
    expect(cache.get('h1', T0)?.revokedAt).not.toBeNull();
  });

  it('evicts a cached key by id and a cached miss by hash', () => {
    const { cache } = setup();
    cache.set('h1', key(), T0, cache.generation);
    cache.set('h2', null, T0, cache.generation);
    cache.evict('key_1');
    cache.evictHash('h2');
    expect(cache.get('h1', T0)).toBeUndefined();
    expect(cache.get('h2', T0)).toBeUndefined();
  });

  it('reading a hit does not change the generation', () => {
    const { cache } = setup();
    const g = cache.generation;
    cache.set('h1', key(), T0, g);
    cache.get('h1', T0);
    cache.get('h2', T0);
    expect(cache.generation).toBe(g);
  });
});
