import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { JwksClient } from 'jwks-rsa';
import { JwtCheck, JwtCheckOptions, JwtRefusal, SignedJwtVerifier } from '../domain/oauth.ports';

/** Asymmetric algorithms only: HS* (and `none`) would let a published key act as a shared secret. */
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
type Asymmetric = (typeof ASYMMETRIC)[number];
/** Longer than any real JWT access token; refused before any parsing. */
const MAX_TOKEN_LENGTH = 16_384;

/**
 * SignedJwtVerifier on `jwks-rsa` (cached, rate-limited key fetches: an
 * unknown `kid` cannot make us hammer the JWKS) and `@nestjs/jwt`, the same
 * pair ManagementTokenVerifier uses. One JWKS client per URI.
 */
@Injectable()
export class JwksSignedJwtVerifier extends SignedJwtVerifier {
  private readonly clients = new Map<string, JwksClient>();

  constructor(private readonly jwt: JwtService) {
    super();
  }

  async verify(token: string, o: JwtCheckOptions): Promise<JwtCheck> {
    if (o.audiences.length === 0) throw new Error('SignedJwtVerifier: at least one audience is required');
    if (token.length > MAX_TOKEN_LENGTH) return no('malformed_token', 'token too long');
    let header: { kid?: unknown; alg?: unknown } | undefined;
    try {
      header = this.jwt.decode<{ header?: { kid?: unknown; alg?: unknown } } | null>(token, { complete: true })?.header;
    } catch {
      header = undefined;
    }
    if (!header) return no('malformed_token', 'not a JWT');
    const alg = typeof header.alg === 'string' ? header.alg : '';
    if (!(ASYMMETRIC as readonly string[]).includes(alg)) return no('unsupported_algorithm', `algorithm ${alg.slice(0, 16) || '(none)'} is not accepted`);
    let publicKey: string;
    try {
      const key = await this.client(o.jwksUri).getSigningKey(typeof header.kid === 'string' ? header.kid : undefined);
      publicKey = key.getPublicKey();
    } catch (err) {
      const name = (err as { name?: string })?.name;
      if (name === 'SigningKeyNotFoundError') return no('unknown_signing_key', 'the token was not signed by a key of the authorization server');
      return no('jwks_unavailable', 'the authorization server keys could not be fetched');
    }
    let claims: Record<string, unknown>;
    try {
      claims = await this.jwt.verifyAsync<Record<string, unknown>>(token, {
        publicKey,
        algorithms: [alg as Asymmetric],
        issuer: o.issuer,
        audience: o.audiences as [string, ...string[]],
        clockTolerance: o.clockToleranceSeconds,
      });
    } catch (err) {
      return classify(err);
    }
    // jsonwebtoken accepts a token without `exp`; an access token that never expires is refused.
    if (typeof claims.exp !== 'number') return no('missing_expiry', 'the token has no exp claim');
    return { ok: true, claims };
  }

  private client(jwksUri: string): JwksClient {
    let c = this.clients.get(jwksUri);
    if (!c) {
      c = new JwksClient({ jwksUri, cache: true, cacheMaxAge: 10 * 60_000, rateLimit: true, jwksRequestsPerMinute: 10, timeout: 5_000 });
      this.clients.set(jwksUri, c);
    }
    return c;
  }
}

function no(reason: JwtRefusal, detail: string): JwtCheck {
  return { ok: false, reason, detail };
}

/** jsonwebtoken's errors → refusal codes; messages are kept short and never contain the token. */
function classify(err: unknown): JwtCheck {
  const e = err as { name?: string; message?: string };
  const message = e?.message ?? '';
  if (e?.name === 'TokenExpiredError') return no('token_expired', 'the token has expired');
  if (e?.name === 'NotBeforeError') return no('token_not_yet_valid', 'the token is not valid yet (nbf)');
  if (message.startsWith('jwt audience invalid')) return no('wrong_audience', 'the token was not issued for this resource (aud)');
  if (message.startsWith('jwt issuer invalid')) return no('wrong_issuer', 'the token was not issued by the configured authorization server (iss)');
  if (message === 'invalid signature') return no('invalid_signature', 'the token signature is invalid');
  if (message === 'invalid algorithm') return no('unsupported_algorithm', 'the token algorithm does not match the key');
  return no('malformed_token', 'the token is malformed');
}
