import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { HttpProblem } from '../shared/http/http-problem';
import { TenantsService } from '../tenants/application/tenants.service';
import { AuthenticatedRequest } from './auth.decorators';
import { ManagementTokenVerifier } from './management-token.verifier';
import { wwwAuthenticate as wwwAuthenticateFor } from './www-authenticate';

/** Authenticates management routes with a JWT bearer token; creates the tenant on first use. */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly verifier: ManagementTokenVerifier,
    private readonly tenants: TenantsService,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new HttpProblem('unauthenticated', 'Send a management JWT as "Authorization: Bearer <token>".', {
        'WWW-Authenticate': wwwAuthenticateFor(this.config, header !== undefined),
      });
    }
    const result = await this.verifier.verify(match[1]);
    if (!result.ok) {
      throw new HttpProblem('unauthenticated', `The bearer token was refused: ${result.reason}.`, {
        'WWW-Authenticate': wwwAuthenticateFor(this.config, true),
      });
    }
    await this.tenants.ensureExists(result.principal.tenantId);
    request.principal = result.principal;
    return true;
  }
}
