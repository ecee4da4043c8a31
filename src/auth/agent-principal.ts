import type { PermissionScope } from '../api-keys/domain/permission-scope';
import type { Actor } from '../shared/domain/actor';

/** The authenticated caller of an agent-facing route: an API key, or an OAuth access token (A5). */
export interface AgentPrincipal {
  /**
   * The API key's id; for an OAuth caller a deterministic UUID of issuer and
   * subject (src/oauth/domain/oauth-subject.ts), so rate limits, usage and
   * credit rows (uuid `key_id` columns) are per subject.
   */
  keyId: string;
  tenantId: string;
  userId: string;
  scope: PermissionScope;
  actor: Actor;
  /** How the caller authenticated; absent means an API key. */
  via?: 'api_key' | 'oauth';
  /** The OAuth token's `sub`, for display (the keyId is its hash). */
  subject?: string;
  /** The API key's monthly credit cap (issue 4); absent or null = none (OAuth callers have none). */
  monthlyCreditCap?: number | null;
}
