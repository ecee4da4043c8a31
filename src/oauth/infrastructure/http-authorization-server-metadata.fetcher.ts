import { Injectable } from '@nestjs/common';
import { AuthorizationServerMetadataFetcher, authorizationServerMetadataUrls } from '../domain/oauth.ports';

const TIMEOUT_MS = 5_000;
const MAX_BYTES = 256 * 1024;

/** Fetches RFC 8414 metadata, falling back to OpenID Connect Discovery, over HTTP(S). */
@Injectable()
export class HttpAuthorizationServerMetadataFetcher extends AuthorizationServerMetadataFetcher {
  async fetch(issuer: string): Promise<Record<string, unknown>> {
    const failures: string[] = [];
    for (const url of authorizationServerMetadataUrls(issuer)) {
      try {
        const res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) });
        if (!res.ok) {
          failures.push(`${url} → ${res.status}`);
          continue;
        }
        const text = await res.text();
        if (text.length > MAX_BYTES) throw new Error('document too large');
        const doc = JSON.parse(text) as unknown;
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
        return doc as Record<string, unknown>;
      } catch (err) {
        failures.push(`${url} → ${(err as Error)?.message ?? 'failed'}`);
      }
    }
    throw new Error(`no metadata found (${failures.join('; ')})`);
  }
}
