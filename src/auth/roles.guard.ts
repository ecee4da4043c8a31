import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError } from '../shared/domain/domain-error';
import { AuthenticatedRequest, requestMetaOf, Roles } from './auth.decorators';
import { AuthEventsRecorder, routeOf } from './auth-events.recorder';
import { actorOf } from './principal';

/**
 * Deny by default: a principal needs one of the route's @Roles (handler overrides class).
 * A refusal is audited as `authz.denied` in the principal's (verified) tenant.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly events: AuthEventsRecorder,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const required = this.reflector.getAllAndOverride(Roles, [context.getHandler(), context.getClass()]);
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const principal = request.principal;
    if (!principal) throw new DomainError('unauthenticated', 'Authentication required.');
    if (!required || required.length === 0) {
      throw new Error('RolesGuard on a route without @Roles: declare who may call it');
    }
    if (!principal.roles.some((r) => required.includes(r))) {
      this.events.authzDenied({
        tenantId: principal.tenantId,
        actor: actorOf(principal),
        reason: 'missing_role',
        route: routeOf(request),
        request: requestMetaOf(request),
        metadata: { required_roles: required, roles: principal.roles },
      });
      throw new DomainError('forbidden', `This operation requires one of the roles: ${required.join(', ')}.`);
    }
    return true;
  }
}
