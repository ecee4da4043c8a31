import type { PermissionScope } from '../api-keys/domain/permission-scope';
import type { Actor } from '../shared/domain/actor';

export const ROLES = ['admin', 'developer', 'auditor', 'service'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller of a management route (from a verified JWT). */
export interface Principal {
  sub: string;
  tenantId: string;
  roles: Role[];
  /** The widest scope this principal may hand to a key (claim `permission_scope`; absent = unrestricted). */
  scope: PermissionScope;
}

export function hasRole(p: Principal, ...roles: Role[]): boolean {
  return p.roles.some((r) => roles.includes(r));
}

export function actorOf(p: Principal): Actor {
  const service = p.roles.includes('service') && !p.roles.includes('admin') && !p.roles.includes('developer');
  return { type: service ? 'service' : 'user', id: p.sub };
}
