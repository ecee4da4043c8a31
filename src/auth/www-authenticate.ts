import type { AppConfig } from '../config/app-config';

/** The WWW-Authenticate value of API.md for a 401 (error="invalid_token" when a credential was sent). */
export function wwwAuthenticate(config: AppConfig, credentialSent: boolean): string {
  const metadata = `${config.publicUrl}/.well-known/oauth-protected-resource/mcp`;
  const base = `Bearer realm="tollgate", resource_metadata="${metadata}"`;
  return credentialSent ? `${base}, error="invalid_token"` : base;
}
