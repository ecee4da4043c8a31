import { Injectable } from '@nestjs/common';
import { AppConfig, OAuthConfig } from '../../config/app-config';
import { AuthorizationServerMetadataFetcher } from '../domain/oauth.ports';
import { AuthorizationServerUnavailableError, OAuthDisabledError } from '../domain/oauth.errors';

/** Fresh metadata is re-read after this long. */
const TTL_MS = 10 * 60_000;
/** After a failed read, wait this long before trying again (stale metadata is served meanwhile). */
const RETRY_AFTER_FAILURE_MS = 30_000;

/**
 * The configured authorization server's metadata (RFC 8414, or OpenID
 * Connect Discovery as a fallback): surfaced at
 * `/.well-known/oauth-authorization-server` for clients of the 2025-03-26
 * revision, and the source of `jwks_uri` when OAUTH_JWKS_URI is unset.
 * Cached; one read in flight at a time; on failure the last good copy is
 * kept (keys rotate slowly, an outage of the AS should not lock every
 * OAuth caller out at once).
 */
@Injectable()
export class AuthorizationServerMetadataService {
  private cached: { value: Record<string, unknown>; at: number } | null = null;
  private failedAt = 0;
  private lastFailure = '';
  private inflight: Promise<Record<string, unknown>> | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly fetcher: AuthorizationServerMetadataFetcher,
  ) {}

  /** The metadata document; throws OAuthDisabledError when OAuth is off, AuthorizationServerUnavailableError when unreadable. */
  async metadata(): Promise<Record<string, unknown>> {
    const oauth = this.config.oauth;
    if (!oauth) throw new OAuthDisabledError();
    const now = Date.now();
    if (this.cached && now - this.cached.at < TTL_MS) return this.cached.value;
    if (now - this.failedAt < RETRY_AFTER_FAILURE_MS) {
      if (this.cached) return this.cached.value;
      throw new AuthorizationServerUnavailableError(this.lastFailure);
    }
    this.inflight ??= this.load(oauth).finally(() => {
      this.inflight = null;
    });
    try {
      return await this.inflight;
    } catch (err) {
      if (this.cached) return this.cached.value;
      throw err;
    }
  }

  /** OAUTH_JWKS_URI, or the `jwks_uri` the authorization server publishes. */
  async jwksUri(): Promise<string> {
    const oauth = this.config.oauth;
    if (!oauth) throw new OAuthDisabledError();
    if (oauth.jwksUri) return oauth.jwksUri;
    const jwks = (await this.metadata()).jwks_uri;
    if (typeof jwks !== 'string') throw new AuthorizationServerUnavailableError('its metadata has no jwks_uri');
    return jwks;
  }

  private async load(oauth: OAuthConfig): Promise<Record<string, unknown>> {
    try {
      const doc = await this.fetcher.fetch(oauth.issuer);
      // RFC 8414 §3.3: the document must be about the issuer we asked for (no mix-up).
      if (doc.issuer !== oauth.issuer) {
        throw new Error(`its metadata names issuer ${JSON.stringify(doc.issuer)}, not ${oauth.issuer}`);
      }
      const jwks = doc.jwks_uri;
      if (jwks !== undefined && (typeof jwks !== 'string' || !isHttpUrl(jwks, this.config.production))) {
        throw new Error('its metadata has an unusable jwks_uri');
      }
      this.cached = { value: doc, at: Date.now() };
      return doc;
    } catch (err) {
      this.failedAt = Date.now();
      this.lastFailure = (err as Error)?.message?.slice(0, 200) ?? 'unreachable';
      throw new AuthorizationServerUnavailableError(this.lastFailure);
    }
  }
}

function isHttpUrl(v: string, httpsOnly: boolean): boolean {
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || (!httpsOnly && u.protocol === 'http:');
  } catch {
    return false;
  }
}
