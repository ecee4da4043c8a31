/** Why a signed JWT was refused; every value but `jwks_unavailable` is the caller's fault (401). */
export type JwtRefusal =
  | 'malformed_token'
  | 'unsupported_algorithm'
  | 'unknown_signing_key'
  | 'invalid_signature'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'missing_expiry'
  | 'wrong_issuer'
  | 'wrong_audience'
  /** The authorization server's keys could not be fetched: our problem (503), not the caller's. */
  | 'jwks_unavailable';

export interface JwtCheckOptions {
  jwksUri: string;
  issuer: string;
  /** Any one of them in `aud` is enough (RFC 8707 resource identifiers of this server). */
  audiences: string[];
  clockToleranceSeconds: number;
}

export type JwtCheck = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: JwtRefusal; detail: string };

/** Verifies an asymmetric JWT (RS/PS/ES) against a JWKS: signature, `iss`, `aud`, `exp` (required), `nbf`. */
export abstract class SignedJwtVerifier {
  abstract verify(token: string, options: JwtCheckOptions): Promise<JwtCheck>;
}

/** Reads an authorization server's metadata (RFC 8414 or OpenID Connect Discovery); throws when none is found. */
export abstract class AuthorizationServerMetadataFetcher {
  abstract fetch(issuer: string): Promise<Record<string, unknown>>;
}

/** The metadata URLs to try for an issuer, in the order of the MCP authorization spec (2025-11-25). */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  const origin = url.origin;
  if (path === '') {
    return [`${origin}/.well-known/oauth-authorization-server`, `${origin}/.well-known/openid-configuration`];
  }
  return [
    `${origin}/.well-known/oauth-authorization-server${path}`,
    `${origin}/.well-known/openid-configuration${path}`,
    `${origin}${path}/.well-known/openid-configuration`,
  ];
}
