import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { Clock } from '../../shared/domain/clock';
import { DomainError } from '../../shared/domain/domain-error';
import { LeakReporterKeys } from '../application/leak-reporter-keys';

/** How long a fetched key set is trusted, and how often unknown identifiers may trigger a refetch. */
const KEYS_TTL_MS = 60 * 60_000;
const REFETCH_MIN_INTERVAL_MS = 60_000;
const FETCH_TIMEOUT_MS = 5_000;

/**
 * The reporter's signing keys, from LEAK_REPORT_KEYS_URL in GitHub's format
 * (`{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`, as at
 * https://api.github.com/meta/public_keys/secret_scanning). Cached for an
 * hour; an identifier not in the cache refetches the set (unknown
 * identifiers, at most once a minute), so a newly published key is picked up
 * at its first report. Written here
 * with fetch: the format is two fields, and the libraries for it wrap the
 * whole GitHub API.
 */
@Injectable()
export class HttpLeakReporterKeys extends LeakReporterKeys {
  private keys = new Map<string, string>();
  private fetchedAt = -Infinity;
  /** When an unknown identifier last triggered a refetch: a flood of made-up identifiers costs one fetch a minute. */
  private unknownRefetchAt = -Infinity;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    super();
  }

  async publicKey(identifier: string): Promise<string | null> {
    const now = this.clock.now().getTime();
    if (now - this.fetchedAt > KEYS_TTL_MS) await this.refresh();
    else if (!this.keys.has(identifier) && now - this.unknownRefetchAt > REFETCH_MIN_INTERVAL_MS) {
      this.unknownRefetchAt = now;
      await this.refresh();
    }
    return this.keys.get(identifier) ?? null;
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    const url = this.config.leakReportKeysUrl;
    if (!url) return;
    let body: unknown;
    try {
      const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      // Without the keys no report can be checked: the reporter retries on 503.
      throw new DomainError('service_unavailable', `The leak reporter's public keys could not be fetched (${(err as Error).message}).`);
    }
    const list = (body as { public_keys?: unknown })?.public_keys;
    if (!Array.isArray(list)) throw new DomainError('service_unavailable', "The leak reporter's public keys are not in the expected format.");
    const keys = new Map<string, string>();
    for (const k of list as Array<{ key_identifier?: unknown; key?: unknown }>) {
      if (typeof k?.key_identifier === 'string' && typeof k.key === 'string') keys.set(k.key_identifier, k.key);
    }
    this.keys = keys;
    this.fetchedAt = this.clock.now().getTime();
  }
}
