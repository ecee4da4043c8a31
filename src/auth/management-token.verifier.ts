import { Injectable, Logger } from '@nestjs/common';
import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { JwksClient } from 'jwks-rsa';
import { PermissionScope } from '../api-keys/domain/permission-scope';
import { AppConfig } from '../config/app-config';
import { Principal, ROLES, Role } from './principal';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
const TENANT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const SUBJECT = /^[\x21-\x7e]{1,256}$/;

export type TokenCheck = { ok: true; principal: Principal } | { ok: false; reason: string };

/**
 * Verifies management JWTs (A1): RS/ES/PS via the JWKS (`jwks-rsa`, cached and
 * rate-limited) with issuer and audience checks, or HS256 with JWT_SECRET
 * outside production. Refusals are values; the guard turns them into 401s.
 */
@Injectable()
export class ManagementTokenVerifier {
  private readonly logger = new Logger(ManagementTokenVerifier.name);
  private readonly jwks: JwksClient | null;
  /**
   * Parsed keys. jsonwebtoken turns a PEM or secret string into a KeyObject on
   * every verify (for a secret it first tries, and fails, to parse it as a
   * public key): that was half of /keys/verify's CPU (bench/README.md, S3).
   */
  private readonly publicKeys = new Map<string, KeyObject>();
  private secretKey: KeyObject | null = null;

  constructor(
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
  ) {
    this.jwks = config.jwt.jwksUri
      ? new JwksClient({
          jwksUri: config.jwt.jwksUri,
          cache: true,
          cacheMaxAge: 10 * 60_000,
          rateLimit: true,
          jwksRequestsPerMinute: 10,
          timeout: 5_000,
        })
      : null;
  }

  async verify(token: string): Promise<TokenCheck> {
    let payload: Record<string, unknown>;
    try {
      payload = this.jwks ? await this.verifyWithJwks(token) : await this.verifyWithSecret(token);
    } catch (err) {
      return { ok: false, reason: describe(err) };
    }
    return this.toPrincipal(payload);
  }

  private async verifyWithJwks(token: string): Promise<Record<string, unknown>> {
    const decoded = this.jwt.decode<{ header?: { kid?: string; alg?: string } } | null>(token, { complete: true });
    if (!decoded?.header) throw new Error('malformed token');
    const alg = decoded.header.alg ?? '';
    if (!(ASYMMETRIC as readonly string[]).includes(alg)) throw new Error(`algorithm ${alg} not accepted`);
    const key = await this.jwks!.getSigningKey(decoded.header.kid);
    return this.jwt.verifyAsync(token, {
      // jsonwebtoken accepts a KeyObject; @nestjs/jwt's type only lists strings and buffers.
      publicKey: this.publicKey(key.getPublicKey()) as unknown as string,
      algorithms: [alg as (typeof ASYMMETRIC)[number]],
      issuer: this.config.jwt.issuer ?? undefined,
      audience: this.config.jwt.audience ?? undefined,
      clockTolerance: 30,
    });
  }

  private async verifyWithSecret(token: string): Promise<Record<string, unknown>> {
    if (!this.config.jwt.secret || this.config.production) throw new Error('no JWT verification configured');
    this.secretKey ??= createSecretKey(Buffer.from(this.config.jwt.secret));
    return this.jwt.verifyAsync(token, {
      secret: this.secretKey as unknown as string,
      algorithms: ['HS256'],
      issuer: this.config.jwt.issuer ?? undefined,
      audience: this.config.jwt.audience ?? undefined,
      clockTolerance: 30,
    });
  }

  /** The JWKS holds a handful of keys; a rotation adds one, so the map stays small (cleared past 64 just in case). */
  private publicKey(pem: string): KeyObject {
    let key = this.publicKeys.get(pem);
    if (!key) {
      if (this.publicKeys.size >= 64) this.publicKeys.clear();
      key = createPublicKey(pem);
      this.publicKeys.set(pem, key);
    }
    return key;
  }

  private toPrincipal(payload: Record<string, unknown>): TokenCheck {
    // jsonwebtoken accepts a token without `exp`: one that never expires is refused (as for OAuth access tokens).
    if (typeof payload.exp !== 'number') return { ok: false, reason: 'missing exp claim' };
    const sub = payload.sub;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) return { ok: false, reason: 'missing or invalid sub claim' };
    const tenantId = payload[this.config.jwt.tenantClaim];
    if (typeof tenantId !== 'string' || !TENANT_ID.test(tenantId)) {
      return { ok: false, reason: `missing or invalid ${this.config.jwt.tenantClaim} claim` };
    }
    const rawRoles = payload[this.config.jwt.rolesClaim];
    const list = Array.isArray(rawRoles) ? rawRoles : typeof rawRoles === 'string' ? rawRoles.split(/\s+/) : [];
    const roles = list.filter((r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r));
    let scope: PermissionScope;
    try {
      scope = payload.permission_scope === undefined ? PermissionScope.unrestricted() : PermissionScope.parse(payload.permission_scope);
    } catch {
      return { ok: false, reason: 'invalid permission_scope claim' };
    }
    return { ok: true, principal: { sub, tenantId, roles, scope } };
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string };
  if (e?.name === 'TokenExpiredError') return 'token expired';
  if (e?.name === 'SigningKeyNotFoundError') return 'unknown signing key';
  return e?.message ?? 'invalid token';
}
