import { Injectable } from '@nestjs/common';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { AppConfig } from '../../config/app-config';
import { DomainError } from '../../shared/domain/domain-error';
import { permissionScopeFromOAuth, tokenScopes } from '../domain/oauth-scope';
import { oauthSubjectKeyId } from '../domain/oauth-subject';
import { JwtRefusal, SignedJwtVerifier } from '../domain/oauth.ports';
import { acceptedAudiences } from '../domain/protected-resource-metadata';
import { AuthorizationServerMetadataService } from './authorization-server-metadata.service';

/** The audit chain of events whose tenant is unknown or untrusted (L1); never a real tenant's id. */
export const RESERVED_TENANT_IDS: readonly string[] = ['_unknown'];
const TENANT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const SUBJECT = /^[\x21-\x7e]{1,256}$/;
/** Clock skew tolerated on exp / nbf. */
const CLOCK_TOLERANCE_SECONDS = 30;

export type OAuthRefusal = JwtRefusal | 'invalid_subject' | 'invalid_tenant';

/** Expected refusals are values; the guard turns them into 401 / 403 / 503. */
export type OAuthCheck =
  | { ok: true; principal: AgentPrincipal }
  /** 401 `invalid_token`, or 503 when `reason` is `jwks_unavailable`. */
  | { ok: false; code: 'invalid_token'; reason: OAuthRefusal; detail: string }
  /** A valid token that grants nothing on MCP: 403 `insufficient_scope`. The caller is known. */
  | { ok: false; code: 'insufficient_scope'; tenantId: string; subject: string; keyId: string; detail: string };

/**
 * A5: verifies OAuth 2.1 access tokens from OAUTH_ISSUER for MCP clients —
 * signature against the issuer's JWKS (RS/PS/ES only), `iss`, `aud` naming
 * this server's MCP resource (RFC 8707: a token minted for another resource
 * is refused), `exp` required, `nbf` — and turns the token into the same
 * AgentPrincipal an API key gives: keyId = a deterministic UUID of issuer and
 * subject (rate limits and usage per subject), tenant from OAUTH_TENANT_CLAIM,
 * permissions from the `mcp:tools[:<server>]` scopes.
 */
@Injectable()
export class OAuthTokenVerifier {
  constructor(
    private readonly config: AppConfig,
    private readonly jwt: SignedJwtVerifier,
    private readonly asMetadata: AuthorizationServerMetadataService,
  ) {}

  get enabled(): boolean {
    return this.config.oauth !== null;
  }

  async verify(token: string): Promise<OAuthCheck> {
    const oauth = this.config.oauth;
    if (!oauth) return refuse('malformed_token', 'OAuth access tokens are not accepted on this server');
    let jwksUri: string;
    try {
      jwksUri = await this.asMetadata.jwksUri();
    } catch (err) {
      return refuse('jwks_unavailable', err instanceof DomainError ? err.message : 'the authorization server is unreachable');
    }
    const checked = await this.jwt.verify(token, {
      jwksUri,
      issuer: oauth.issuer,
      audiences: acceptedAudiences({ publicUrl: this.config.publicUrl, audience: oauth.audience, issuer: oauth.issuer }),
      clockToleranceSeconds: CLOCK_TOLERANCE_SECONDS,
    });
    if (!checked.ok) return refuse(checked.reason, checked.detail);
    const claims = checked.claims;
    const sub = claims.sub;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) return refuse('invalid_subject', 'the token has no usable sub claim');
    const tenantId = claims[oauth.tenantClaim];
    if (typeof tenantId !== 'string' || !TENANT_ID.test(tenantId) || RESERVED_TENANT_IDS.includes(tenantId)) {
      return refuse('invalid_tenant', `the token has no usable ${oauth.tenantClaim} claim`);
    }
    const keyId = oauthSubjectKeyId(oauth.issuer, sub);
    const scope = permissionScopeFromOAuth(tokenScopes(claims));
    if (!scope) {
      return {
        ok: false,
        code: 'insufficient_scope',
        tenantId,
        subject: sub,
        keyId,
        detail: 'The access token grants no MCP scope; request "mcp:tools" (or "mcp:tools:<server>").',
      };
    }
    return {
      ok: true,
      principal: {
        keyId,
        tenantId,
        userId: sub,
        scope,
        actor: { type: 'user', id: sub },
        subject: sub,
        via: 'oauth',
        // Caps are per API key; an OAuth subject spends against the tenant's balance only.
        monthlyCreditCap: null,
      },
    };
  }
}

function refuse(reason: OAuthRefusal, detail: string): OAuthCheck {
  return { ok: false, code: 'invalid_token', reason, detail };
}
