import type { PermissionScope } from '../api-keys/domain/permission-scope';
import type { Actor } from '../shared/domain/actor';

/** The authenticated caller of an agent-facing route (API key; OAuth token later). */
export interface AgentPrincipal {
  keyId: string;
  tenantId: string;
  userId: string;
  scope: PermissionScope;
  actor: Actor;
}
