import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AppConfig } from '../config/app-config';
import type { Role } from './principal';

/**
 * Development-only admin tokens (printed by `npm start`),
 * signed with the HS256 secret. Refused in production or when a JWKS is configured.
 */
@Injectable()
export class DevTokenIssuer {
  constructor(
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
  ) {}

  get available(): boolean {
    return !this.config.production && !this.config.jwt.jwksUri && !!this.config.jwt.secret;
  }

  issue(input: { sub?: string; tenantId?: string; roles?: Role[]; ttlSeconds?: number } = {}): string {
    if (!this.available) throw new Error('Development tokens need JWT_SECRET (or the generated dev secret) and no JWT_JWKS_URI, outside production');
    const claims: Record<string, unknown> = {
      sub: input.sub ?? 'dev-admin',
      [this.config.jwt.tenantClaim]: input.tenantId ?? 'demo',
      [this.config.jwt.rolesClaim]: input.roles ?? ['admin'],
    };
    return this.jwt.sign(claims, {
      secret: this.config.jwt.secret!,
      algorithm: 'HS256',
      expiresIn: input.ttlSeconds ?? 12 * 3600,
      ...(this.config.jwt.issuer ? { issuer: this.config.jwt.issuer } : {}),
      ...(this.config.jwt.audience ? { audience: this.config.jwt.audience } : {}),
    });
  }
}
