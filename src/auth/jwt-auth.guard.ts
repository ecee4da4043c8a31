import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { HttpProblem } from '../shared/http/http-problem';
import { TenantsService } from '../tenants/application/tenants.service';
import { AuthenticatedRequest, requestMetaOf } from './auth.decorators';
import { AuthEventsRecorder, routeOf } from './auth-events.recorder';
import { ManagementTokenVerifier } from './management-token.verifier';
import { wwwAuthenticate as wwwAuthenticateFor } from './www-authenticate';

/**
 * Authenticates management routes with a JWT bearer token; creates the tenant on first use.
 * Refusals are audited as `auth.failed` on the `_unknown` chain: the tenant
 * claim of a token that failed verification is only the caller's word.
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly verifier: ManagementTokenVerifier,
    private readonly tenants: TenantsService,
    private readonly config: AppConfig,
    private readonly events: AuthEventsRecorder,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      this.failed(request, header === undefined ? 'missing_token' : 'malformed_authorization_header');
      throw new HttpProblem('unauthenticated', 'Send a management JWT as "Authorization: Bearer <token>".', {
        'WWW-Authenticate': wwwAuthenticateFor(this.config, header !== undefined),
      });
    }
    const result = await this.verifier.verify(match[1]);
    if (!result.ok) {
      this.failed(request, reasonCode(result.reason));
      // jsonwebtoken names what it expected ("jwt audience invalid. expected: …"): not for the caller to learn.
      throw new HttpProblem('unauthenticated', `The bearer token was refused: ${result.reason.replace(/\. expected: .*$/s, '')}.`, {
        'WWW-Authenticate': wwwAuthenticateFor(this.config, true),
      });
    }
    await this.tenants.ensureExists(result.principal.tenantId);
    request.principal = result.principal;
    return true;
  }

  private failed(request: AuthenticatedRequest, reason: string): void {
    this.events.authFailed({ tenantId: null, reason, credential: 'management_jwt', route: routeOf(request), request: requestMetaOf(request) });
  }
}

/**
 * ManagementTokenVerifier's refusal text → a stable reason code for the audit
 * row (the text comes from jsonwebtoken / jwks-rsa and never holds the token).
 */
export function reasonCode(reason: string): string {
  const table: [RegExp, string][] = [
    [/expired/i, 'token_expired'],
    [/not active|nbf/i, 'token_not_yet_valid'],
    [/audience/i, 'wrong_audience'],
    [/issuer/i, 'wrong_issuer'],
    [/signature/i, 'invalid_signature'],
    [/signing key/i, 'unknown_signing_key'],
    [/algorithm/i, 'unsupported_algorithm'],
    [/sub claim/i, 'invalid_subject'],
    [/exp claim/i, 'missing_expiry'],
    [/permission_scope/i, 'invalid_permission_scope'],
    [/claim/i, 'invalid_tenant'],
    [/no JWT verification configured/i, 'not_configured'],
  ];
  return table.find(([re]) => re.test(reason))?.[1] ?? 'malformed_token';
}
