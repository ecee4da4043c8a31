import { Injectable, Logger } from '@nestjs/common';
import { createPublicKey, KeyObject } from 'node:crypto';
import { AppConfig } from '../../config/app-config';
import { Clock } from '../../shared/domain/clock';
import { DomainError } from '../../shared/domain/domain-error';
import { LeakReporterKeys, ReporterKeyLookup } from '../application/leak-reporter-keys';

/** How long a fetched key set is trusted before it is fetched again. */
const KEYS_TTL_MS = 60 * 60_000;
/** Unknown identifiers refetch the set at most this often, and a failed fetch is not retried sooner. */
const REFETCH_MIN_INTERVAL_MS = 60_000;
const FETCH_TIMEOUT_MS = 5_000;
/** What an identifier may look like to trigger a refetch (GitHub's are 64 hex characters). */
const IDENTIFIER = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The reporter's signing keys, from LEAK_REPORT_KEYS_URL in GitHub's format
 * (`{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`, as at
 * https://api.github.com/meta/public_keys/secret_scanning). Written here with
 * fetch: the format is two fields, and the libraries for it wrap the whole
 * GitHub API. The set is:
 * - cached for an hour and revalidated with If-None-Match (GitHub does not
 *   count a 304 against its rate limit);
 * - refetched when an unknown identifier arrives, at most once a minute, so a
 *   newly published key is picked up at its first report while made-up
 *   identifiers cost one conditional request a minute;
 * - kept when a refresh fails (logged; retried no sooner than a minute later),
 *   so a reporter outage or rate limit does not turn every report away.
 * Only EC keys are kept, parsed once.
 */
@Injectable()
export class HttpLeakReporterKeys extends LeakReporterKeys {
  private readonly logger = new Logger(HttpLeakReporterKeys.name);
  private keys = new Map<string, KeyObject>();
  private etag: string | null = null;
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    super();
  }

  async publicKey(identifier: string): Promise<ReporterKeyLookup> {
    if (this.inFlight) await this.inFlight.catch(() => undefined);
    let now = this.clock.now().getTime();
    let refreshed = false;
    if (now - this.fetchedAt > KEYS_TTL_MS && now - this.attemptedAt >= REFETCH_MIN_INTERVAL_MS) {
      await this.refresh();
      refreshed = true;
    }
    let key = this.keys.get(identifier);
    if (!key && !refreshed && IDENTIFIER.test(identifier)) {
      now = this.clock.now().getTime();
      if (now - this.attemptedAt < REFETCH_MIN_INTERVAL_MS) {
        // Perhaps a key published since the last fetch: tell the reporter to come back rather than refuse for good.
        return { key: null, retryAfterSeconds: Math.max(1, Math.ceil((this.attemptedAt + REFETCH_MIN_INTERVAL_MS - now) / 1000)) };
      }
      await this.refresh();
      key = this.keys.get(identifier);
    }
    return key ? { key } : { key: null, retryAfterSeconds: null };
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    const url = this.config.leakReportKeysUrl;
    if (!url) return;
    this.attemptedAt = this.clock.now().getTime();
    try {
      const res = await fetch(url, {
        headers: { accept: 'application/json', ...(this.etag ? { 'if-none-match': this.etag } : {}) },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
      if (res.status === 304) {
        this.fetchedAt = this.clock.now().getTime();
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const list = ((await res.json()) as { public_keys?: unknown })?.public_keys;
      if (!Array.isArray(list)) throw new Error('no public_keys array');
      const keys = new Map<string, KeyObject>();
      for (const k of list as Array<{ key_identifier?: unknown; key?: unknown }>) {
        if (typeof k?.key_identifier !== 'string' || typeof k.key !== 'string') continue;
        try {
          const parsed = createPublicKey(k.key);
          if (parsed.asymmetricKeyType === 'ec') keys.set(k.key_identifier, parsed);
        } catch {
          // an unparsable entry is skipped, the others still count
        }
      }
      this.keys = keys;
      this.etag = res.headers.get('etag');
      this.fetchedAt = this.clock.now().getTime();
    } catch (err) {
      this.logger.warn(`leak reporter keys from ${url}: ${(err as Error).message}${this.keys.size ? '; keeping the last good set' : ''}`);
      // Without any key no report can be checked: the reporter retries on 503.
      if (this.keys.size === 0) throw new DomainError('service_unavailable', "The leak reporter's public keys could not be fetched; retry later.", { retry_after: 60 });
    }
  }
}
