import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { requestMetaOf } from '../../auth/auth.decorators';
import { AuthEventsRecorder, CredentialKind, routeOf } from '../../auth/auth-events.recorder';
import { AppConfig } from '../../config/app-config';
import { OAuthTokenVerifier } from '../../oauth/application/oauth-token-verifier';
import { MCP_TOOLS_SCOPE } from '../../oauth/domain/oauth-scope';
import { bearerChallenge, McpResourcePath, metadataUrlFor } from '../../oauth/domain/protected-resource-metadata';
import { AUTH_FAILURES_PER_MINUTE, AuthFailureLimiter } from '../../plans/infrastructure/auth-failure-limiter';
import type { ProblemCode } from '../../shared/domain/domain-error';
import { HttpProblem } from '../../shared/http/http-problem';
import { TenantsService } from '../../tenants/application/tenants.service';
import { KeyVerifier } from '../application/key-verifier';
import { APIKeyToken } from '../domain/api-key-token';

export type AgentRequest = FastifyRequest & { agent?: AgentPrincipal };

const MESSAGES = {
  missing_key: 'Send an API key in the X-API-Key header or as "Authorization: Bearer <key>".',
  invalid_key: 'The API key is not valid.',
  expired_key: 'The API key has expired.',
  disabled_key: 'The API key is disabled.',
  revoked_key: 'The API key has been revoked.',
} as const;

/** Three base64url segments (the signature may be empty only to be refused later): a JWS compact token. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface Credential {
  value: string;
  header: 'x-api-key' | 'authorization';
}

/**
 * Agent routes (/mcp, the REST mirror): the credential is checked on every
 * HTTP request, so a revoked or disabled key stops working mid-session.
 *
 * - `X-API-Key`, or a Bearer with our key format and checksum: an API key.
 * - With OAUTH_ISSUER set, any other Bearer shaped like a JWT: an OAuth
 *   access token (A5), verified by OAuthTokenVerifier.
 *
 * Refusals are 401 problem+json with the key's own code (`unauthenticated`
 * for a refused access token) and the `WWW-Authenticate` challenge of API.md
 * naming the protected-resource metadata of the endpoint called; a valid
 * token granting no MCP scope is 403 `insufficient_scope` (RFC 6750 §3.1).
 * Every refusal is audited (`auth.failed` / `authz.denied`) off the response
 * path; successes write nothing.
 */
@Injectable()
export class APIKeyAuthGuard implements CanActivate {
  constructor(
    private readonly verifier: KeyVerifier,
    private readonly config: AppConfig,
    private readonly failures: AuthFailureLimiter,
    private readonly oauth: OAuthTokenVerifier,
    private readonly events: AuthEventsRecorder,
    private readonly tenants: TenantsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AgentRequest>();
    const credential = extractCredential(request);
    if (credential === null) {
      await this.brake(request);
      this.failed(request, 'missing_key', 'none');
      throw new HttpProblem('missing_key', MESSAGES.missing_key, { 'WWW-Authenticate': this.challenge(request, false) });
    }
    if (credential.header === 'authorization' && this.oauth.enabled && this.isOAuthToken(credential.value)) {
      request.agent = await this.authenticateOAuth(request, credential.value);
      return true;
    }
    const result = await this.verifier.verify(credential.value);
    if (!result.ok) {
      await this.brake(request);
      this.failed(request, result.code, 'api_key', result.key ? { tenantId: result.key.tenantId, keyId: result.key.id } : undefined);
      throw new HttpProblem(result.code, MESSAGES[result.code], { 'WWW-Authenticate': this.challenge(request, true) });
    }
    const key = result.key;
    request.agent = {
      keyId: key.id,
      tenantId: key.tenantId,
      userId: key.userId,
      scope: key.scope,
      actor: { type: 'api_key', id: key.id },
      via: 'api_key',
      monthlyCreditCap: key.monthlyCreditCap,
    };
    return true;
  }

  private async authenticateOAuth(request: AgentRequest, token: string): Promise<AgentPrincipal> {
    const result = await this.oauth.verify(token);
    if (result.ok) {
      // A tenant may first appear through an agent's token (an operator upstream shared with every
      // tenant): its quota and credit rows need the tenant row. Known tenants cost a Set lookup.
      await this.tenants.ensureExists(result.principal.tenantId);
      return result.principal;
    }
    if (result.code === 'insufficient_scope') {
      this.events.authzDenied({
        tenantId: result.tenantId,
        actor: { type: 'user', id: result.subject },
        reason: 'insufficient_scope',
        route: routeOf(request),
        request: requestMetaOf(request),
        metadata: { credential: 'oauth_token', key_id: result.keyId, required_scope: MCP_TOOLS_SCOPE },
      });
      throw new HttpProblem(
        'insufficient_scope',
        result.detail,
        {
          'WWW-Authenticate': bearerChallenge({
            resourceMetadata: this.metadataUrl(request),
            error: 'insufficient_scope',
            errorDescription: 'the access token grants no MCP scope',
            scope: MCP_TOOLS_SCOPE,
          }),
        },
        { required_scope: MCP_TOOLS_SCOPE },
      );
    }
    if (result.reason === 'jwks_unavailable') {
      // Not the caller's fault: no brake, no audit (an AS outage would flood the chain), retry later.
      throw new HttpProblem('service_unavailable', result.detail, { 'Retry-After': '30' });
    }
    await this.brake(request);
    this.failed(request, result.reason, 'oauth_token');
    throw new HttpProblem(
      'unauthenticated',
      `The access token was refused: ${result.detail}.`,
      { 'WWW-Authenticate': this.challenge(request, true, result.detail) },
      { reason: result.reason },
    );
  }

  /** Our API keys (prefix + checksum) never go to the OAuth verifier; nor does anything not shaped like a JWT. */
  private isOAuthToken(value: string): boolean {
    const key = APIKeyToken.parse(value);
    if (key && key.prefix === this.config.apiKeyPrefix) return false;
    return JWT_SHAPE.test(value);
  }

  private failed(request: FastifyRequest, reason: ProblemCode | string, credential: CredentialKind, key?: { tenantId: string; keyId: string }): void {
    this.events.authFailed({
      // A key that exists names its tenant for sure (the secret hashed to it); otherwise the `_unknown` chain.
      tenantId: key?.tenantId ?? null,
      ...(key ? { actor: { type: 'api_key' as const, id: key.keyId } } : {}),
      reason,
      credential,
      route: routeOf(request),
      request: requestMetaOf(request),
      ...(key ? { metadata: { key_id: key.keyId } } : {}),
    });
  }

  /** The protected-resource metadata of the endpoint called (RFC 9728 §5.1): /api/v1/mcp has its own. */
  private metadataUrl(request: FastifyRequest): string {
    const path: McpResourcePath = request.routeOptions?.url === '/api/v1/mcp' ? '/api/v1/mcp' : '/mcp';
    return metadataUrlFor({ publicUrl: this.config.publicUrl, audience: this.config.oauth?.audience ?? null, issuer: null }, path);
  }

  /** API.md's 401 challenge; with OAuth on it also names the scope to request (MCP 2025-11-25). */
  private challenge(request: FastifyRequest, credentialSent: boolean, description?: string): string {
    return bearerChallenge({
      resourceMetadata: this.metadataUrl(request),
      ...(credentialSent ? { error: 'invalid_token' as const } : {}),
      ...(credentialSent && description ? { errorDescription: description } : {}),
      ...(this.oauth.enabled ? { scope: MCP_TOOLS_SCOPE } : {}),
    });
  }

  /** Failed attempts per IP are limited too (brute force): past the limit, 429 instead of 401. */
  private async brake(request: FastifyRequest): Promise<void> {
    const retryAfter = await this.failures.fail(request.ip);
    if (retryAfter !== null) {
      throw new HttpProblem(
        'rate_limited',
        `Too many failed authentication attempts from this address; retry in ${retryAfter} s.`,
        { 'Retry-After': String(retryAfter) },
        {
          quota_info: {
            plan: 'anonymous',
            limit: AUTH_FAILURES_PER_MINUTE,
            used: AUTH_FAILURES_PER_MINUTE,
            remaining: 0,
            reset_at: new Date(Date.now() + retryAfter * 1000).toISOString(),
          },
        },
      );
    }
  }
}

function extractCredential(request: FastifyRequest): Credential | null {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header.trim()) return { value: header.trim(), header: 'x-api-key' };
  const auth = request.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m ? { value: m[1], header: 'authorization' } : null;
}

/** The authenticated agent (set by APIKeyAuthGuard). */
export const CurrentAgent = createParamDecorator((_: unknown, ctx: ExecutionContext): AgentPrincipal => {
  const agent = ctx.switchToHttp().getRequest<AgentRequest>().agent;
  if (!agent) throw new Error('CurrentAgent used on a route without APIKeyAuthGuard');
  return agent;
});
