import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { wwwAuthenticate } from '../../auth/www-authenticate';
import { AppConfig } from '../../config/app-config';
import { AuthFailureLimiter } from '../../plans/infrastructure/auth-failure-limiter';
import { HttpProblem } from '../../shared/http/http-problem';
import { KeyVerifier } from '../application/key-verifier';

export type AgentRequest = FastifyRequest & { agent?: AgentPrincipal };

const MESSAGES = {
  missing_key: 'Send an API key in the X-API-Key header or as "Authorization: Bearer <key>".',
  invalid_key: 'The API key is not valid.',
  expired_key: 'The API key has expired.',
  disabled_key: 'The API key is disabled.',
  revoked_key: 'The API key has been revoked.',
} as const;

/**
 * Agent routes (/mcp, the REST mirror): the API key is checked on every HTTP
 * request, so a revoked or disabled key stops working mid-session. Refusals
 * are 401 problem+json with the key's own code and the WWW-Authenticate of API.md.
 */
@Injectable()
export class APIKeyAuthGuard implements CanActivate {
  constructor(
    private readonly verifier: KeyVerifier,
    private readonly config: AppConfig,
    private readonly failures: AuthFailureLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AgentRequest>();
    const raw = extractKey(request);
    if (raw === null) {
      await this.brake(request);
      throw new HttpProblem('missing_key', MESSAGES.missing_key, { 'WWW-Authenticate': wwwAuthenticate(this.config, false) });
    }
    const result = await this.verifier.verify(raw);
    if (!result.ok) {
      await this.brake(request);
      throw new HttpProblem(result.code, MESSAGES[result.code], { 'WWW-Authenticate': wwwAuthenticate(this.config, true) });
    }
    const key = result.key;
    request.agent = {
      keyId: key.id,
      tenantId: key.tenantId,
      userId: key.userId,
      scope: key.scope,
      actor: { type: 'api_key', id: key.id },
    };
    return true;
  }

  /** Failed attempts per IP are limited too (brute force): past the limit, 429 instead of 401. */
  private async brake(request: FastifyRequest): Promise<void> {
    const retryAfter = await this.failures.fail(request.ip);
    if (retryAfter !== null) {
      throw new HttpProblem('rate_limited', `Too many failed authentication attempts from this address; retry in ${retryAfter} s.`, {
        'Retry-After': String(retryAfter),
      });
    }
  }
}

function extractKey(request: FastifyRequest): string | null {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header.trim()) return header.trim();
  const auth = request.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m ? m[1] : null;
}

/** The authenticated agent (set by APIKeyAuthGuard). */
export const CurrentAgent = createParamDecorator((_: unknown, ctx: ExecutionContext): AgentPrincipal => {
  const agent = ctx.switchToHttp().getRequest<AgentRequest>().agent;
  if (!agent) throw new Error('CurrentAgent used on a route without APIKeyAuthGuard');
  return agent;
});
