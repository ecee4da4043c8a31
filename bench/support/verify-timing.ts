/**
 * S5: median time of KeyVerifier.verify() for a valid key vs a well-formed
 * unknown key, in-process (no HTTP, no JWT), on the bench database. Measured
 * with the key cache warm (the production steady state) and with the cache
 * off (every call is one indexed PostgreSQL lookup). Samples of the two keys
 * are interleaved so that drift (GC, other processes) hits both alike.
 */
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { APIKeySecrets } from '../../src/api-keys/application/api-key-secrets';
import { KeyCache } from '../../src/api-keys/application/key-cache';
import { KeyVerifier } from '../../src/api-keys/application/key-verifier';
import { APIKeyToken } from '../../src/api-keys/domain/api-key-token';
import type { APIKey } from '../../src/api-keys/domain/api-key';
import { TypeOrmAPIKeyRepository } from '../../src/api-keys/infrastructure/typeorm-api-key.repository';
import { NoopMetrics } from '../../src/observability/metrics';
import type { AppConfig } from '../../src/config/app-config';
import { dataSourceOptions } from '../../src/database/data-source';
import { SystemClock } from '../../src/shared/domain/clock';

export interface VerifyTiming {
  iterations: { warm: number; cold: number };
  /** Medians, µs. */
  warm: { valid: number; unknown: number };
  cold: { valid: number; unknown: number };
  malformed: number;
}

/** The cache switched off: every verify() goes to PostgreSQL. */
class NoCache extends KeyCache {
  get(): APIKey | null | undefined {
    return undefined;
  }
  set(): void {}
}

export async function measureVerifyTiming(databaseUrl: string, pepper: string, validKey: string, warmN = 20_000, coldN = 2_000): Promise<VerifyTiming> {
  const ds = new DataSource(dataSourceOptions(databaseUrl, { extra: { max: 2, application_name: 'tollgate-bench-s5' } } as never));
  await ds.initialize();
  try {
    const config = { apiKeyPepper: pepper, apiKeyPrefix: 'tg', apiKeyEnv: 'live' } as AppConfig;
    const repo = new TypeOrmAPIKeyRepository(ds);
    const secrets = new APIKeySecrets(config);
    const warm = new KeyVerifier(repo, secrets, new SystemClock(), newCache(KeyCache), new NoopMetrics());
    const cold = new KeyVerifier(repo, secrets, new SystemClock(), newCache(NoCache), new NoopMetrics());
    const unknownKey = APIKeyToken.generate('tg', 'live').value;
    const malformedKey = `${validKey.slice(0, -1)}${validKey.endsWith('A') ? 'B' : 'A'}`;
    const check = await warm.verify(validKey);
    if (!check.ok) throw new Error(`S5: the valid key does not verify (${check.code})`);
    if ((await warm.verify(unknownKey)).ok) throw new Error('S5: the unknown key verifies');

    const pairTimes = async (v: KeyVerifier, n: number, warmup: number) => {
      const valid = new Float64Array(n);
      const unknown = new Float64Array(n);
      for (let i = -warmup; i < n; i++) {
        // Alternate which goes first, so neither always follows the other.
        const order = i & 1 ? [validKey, unknownKey] : [unknownKey, validKey];
        for (const k of order) {
          const t0 = performance.now();
          await v.verify(k);
          const dt = (performance.now() - t0) * 1000;
          if (i >= 0) (k === validKey ? valid : unknown)[i] = dt;
        }
      }
      return { valid: median(valid), unknown: median(unknown) };
    };
    const warmTimes = await pairTimes(warm, warmN, 2_000);
    const coldTimes = await pairTimes(cold, coldN, 200);
    const mal = new Float64Array(warmN);
    for (let i = 0; i < warmN; i++) {
      const t0 = performance.now();
      await warm.verify(malformedKey);
      mal[i] = (performance.now() - t0) * 1000;
    }
    return { iterations: { warm: warmN, cold: coldN }, warm: warmTimes, cold: coldTimes, malformed: median(mal) };
  } finally {
    await ds.destroy();
  }
}

/**
 * KeyCache takes an InvalidationBus since the Redis fan-out work; a local bus
 * (or none, on trees before it) is what a single process uses.
 */
function newCache(C: typeof KeyCache): KeyCache {
  let bus: unknown;
  try {
    const mod = require('../../src/shared/domain/invalidation-bus') as { LocalInvalidationBus?: new () => unknown };
    bus = mod.LocalInvalidationBus ? new mod.LocalInvalidationBus() : undefined;
  } catch {
    bus = undefined;
  }
  return new (C as unknown as new (bus: unknown) => KeyCache)(bus);
}

function median(xs: Float64Array): number {
  const s = Float64Array.from(xs).sort();
  return Math.round(s[Math.floor(s.length / 2)] * 100) / 100;
}
