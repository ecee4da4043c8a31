import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError } from '../shared/domain/domain-error';
import { AuthenticatedRequest, Roles } from './auth.decorators';

/** Deny by default: a principal needs one of the route's @Roles (handler overrides class). */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const required = this.reflector.getAllAndOverride(Roles, [context.getHandler(), context.getClass()]);
    const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
    if (!principal) throw new DomainError('unauthenticated', 'Authentication required.');
    if (!required || required.length === 0) {
      throw new Error('RolesGuard on a route without @Roles: declare who may call it');
    }
    if (!principal.roles.some((r) => required.includes(r))) {
      throw new DomainError('forbidden', `This operation requires one of the roles: ${required.join(', ')}.`);
    }
    return true;
  }
}
