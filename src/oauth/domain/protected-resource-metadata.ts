import { MCP_TOOLS_SCOPE } from './oauth-scope';

/** RFC 9728 §2 OAuth 2.0 Protected Resource Metadata, as Tollgate publishes it. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers?: string[];
  scopes_supported: string[];
  bearer_methods_supported: string[];
  resource_name: string;
  resource_documentation?: string;
}

export interface ResourceServerSettings {
  /** PUBLIC_URL without a trailing slash. */
  publicUrl: string;
  /** OAUTH_AUDIENCE (default `$PUBLIC_URL/mcp`), or null when OAuth is off. */
  audience: string | null;
  /** OAUTH_ISSUER, or null when OAuth is off. */
  issuer: string | null;
}

export const WELL_KNOWN_PROTECTED_RESOURCE = '/.well-known/oauth-protected-resource';

/** The MCP endpoint paths and the resource identifier each one is published under. */
export const MCP_RESOURCE_PATHS = ['/mcp', '/api/v1/mcp'] as const;
export type McpResourcePath = (typeof MCP_RESOURCE_PATHS)[number];

/**
 * The resource identifier of an MCP endpoint. RFC 9728 §3.3: the `resource` of
 * a document must equal, character for character, the URL the client called
 * and derived the metadata URL from; `/mcp` is OAUTH_AUDIENCE (by default
 * exactly `$PUBLIC_URL/mcp`), the alias `/api/v1/mcp` is always under PUBLIC_URL.
 */
export function resourceFor(settings: ResourceServerSettings, path: McpResourcePath): string {
  if (path === '/mcp') return settings.audience ?? `${settings.publicUrl}/mcp`;
  return `${settings.publicUrl}${path}`;
}

/** The audiences an access token may name to be accepted here (RFC 8707): this server's MCP resources. */
export function acceptedAudiences(settings: ResourceServerSettings): string[] {
  return [...new Set(MCP_RESOURCE_PATHS.map((p) => resourceFor(settings, p)))];
}

/** `<PUBLIC_URL>/.well-known/oauth-protected-resource<path>` (RFC 9728 §3.1 path insertion). */
export function metadataUrlFor(settings: ResourceServerSettings, path: McpResourcePath): string {
  return `${settings.publicUrl}${WELL_KNOWN_PROTECTED_RESOURCE}${path}`;
}

/**
 * The document for one MCP endpoint. The path-less `/.well-known/oauth-protected-resource`
 * describes `/mcp` too (resource = OAUTH_AUDIENCE): an older client that only
 * tries the root document must still ask its authorization server for the
 * resource tokens are checked against, not for the bare origin.
 * `authorization_servers` is present only when OAuth is on; with API keys
 * alone the document still says how to send a credential.
 */
export function buildProtectedResourceMetadata(
  settings: ResourceServerSettings,
  path: McpResourcePath,
  documentation?: string,
): ProtectedResourceMetadata {
  return {
    resource: resourceFor(settings, path),
    ...(settings.issuer ? { authorization_servers: [settings.issuer] } : {}),
    scopes_supported: [MCP_TOOLS_SCOPE],
    bearer_methods_supported: ['header'],
    resource_name: 'Tollgate',
    ...(documentation ? { resource_documentation: documentation } : {}),
  };
}

/** A quoted-string parameter value for WWW-Authenticate (RFC 9110 §5.6.4). */
function quoted(v: string): string {
  return `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * A `Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1): realm first, then
 * `resource_metadata`, then, when present, `error`, `error_description` and `scope`.
 */
export function bearerChallenge(p: {
  resourceMetadata: string;
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request';
  errorDescription?: string;
  scope?: string;
}): string {
  const parts = [`realm="tollgate"`, `resource_metadata=${quoted(p.resourceMetadata)}`];
  if (p.error) parts.push(`error=${quoted(p.error)}`);
  // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
  if (p.errorDescription) parts.push(`error_description=${quoted(p.errorDescription.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, ' '))}`);
  if (p.scope) parts.push(`scope=${quoted(p.scope)}`);
  return `Bearer ${parts.join(', ')}`;
}
