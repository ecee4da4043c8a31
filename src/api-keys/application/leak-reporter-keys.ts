import type { KeyObject } from 'node:crypto';

/**
 * A reporter's signing key by identifier: `key`, or null with `retryAfterSeconds`
 * when the identifier may be a key published since the last fetch that cannot
 * be fetched right now (the report should come back later), or null without
 * it when the identifier is simply unknown.
 */
export type ReporterKeyLookup = { key: KeyObject } | { key: null; retryAfterSeconds: number | null };

/** The public keys a leak reporter signs its reports with (EC keys only). */
export abstract class LeakReporterKeys {
  abstract publicKey(identifier: string): Promise<ReporterKeyLookup>;
}
