import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { RequestMeta } from '../shared/domain/actor';
import type { Principal, Role } from './principal';

/** Roles allowed on a route or controller; no metadata = any authenticated principal. */
export const Roles = Reflector.createDecorator<Role[]>();

export type AuthenticatedRequest = FastifyRequest & { principal?: Principal };

/** The verified management principal (set by JwtAuthGuard). */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on a route without JwtAuthGuard');
  return principal;
});

/** Request id, client IP and user agent, for audit events. */
export const CurrentRequestMeta = createParamDecorator((_: unknown, ctx: ExecutionContext): RequestMeta =>
  requestMetaOf(ctx.switchToHttp().getRequest<FastifyRequest>()),
);

export function requestMetaOf(request: FastifyRequest): RequestMeta {
  const ua = request.headers['user-agent'];
  return {
    requestId: request.id ? String(request.id) : null,
    ip: request.ip ?? null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
  };
}
