import { PermissionScope } from '../../api-keys/domain/permission-scope';
import { UPSTREAM_NAME } from '../../mcp/domain/upstream';

/** The OAuth scope that grants every MCP tool of the caller's tenant (list and call). */
export const MCP_TOOLS_SCOPE = 'mcp:tools';
/** `mcp:tools:<server>` grants the tools of one upstream, exposed as `<server>__<tool>`. */
const SERVER_SCOPE_PREFIX = `${MCP_TOOLS_SCOPE}:`;
/** Separator between an upstream's name and its tool names (API.md "MCP"). */
const TOOL_SEPARATOR = '__';

/**
 * The scopes a token grants: RFC 9068 / RFC 8693 `scope` (space-separated
 * string) or the `scp` array some authorization servers use instead. Unknown
 * shapes grant nothing.
 */
export function tokenScopes(claims: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string') v.split(/\s+/).filter(Boolean).forEach((s) => out.add(s));
    else if (Array.isArray(v)) v.filter((s): s is string => typeof s === 'string').forEach(add);
  };
  add(claims.scope);
  add(claims.scp);
  return [...out];
}

/**
 * Maps OAuth scopes to the permission scope every agent route decides with:
 * `mcp:tools` → `mcp_tool_ids: ['*']`, `mcp:tools:<server>` → `['<server>__*']`.
 * Returns null when no scope grants anything on MCP (the caller gets 403
 * `insufficient_scope`). Other scopes (openid, profile, …) are ignored, as is
 * a server scope whose name could not be an upstream's (no globs smuggled in).
 */
export function permissionScopeFromOAuth(scopes: readonly string[]): PermissionScope | null {
  const patterns = new Set<string>();
  for (const s of scopes) {
    if (s === MCP_TOOLS_SCOPE) return PermissionScope.parse({ mcp_tool_ids: ['*'] });
    if (!s.startsWith(SERVER_SCOPE_PREFIX)) continue;
    const server = s.slice(SERVER_SCOPE_PREFIX.length);
    if (UPSTREAM_NAME.test(server)) patterns.add(`${server}${TOOL_SEPARATOR}*`);
  }
  if (patterns.size === 0) return null;
  return PermissionScope.parse({ mcp_tool_ids: [...patterns].slice(0, 100) });
}
