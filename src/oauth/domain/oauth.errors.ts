import { DomainError } from '../../shared/domain/domain-error';

/** The configured authorization server's metadata or keys cannot be read right now (503, retry later). */
export class AuthorizationServerUnavailableError extends DomainError {
  constructor(detail: string) {
    super('service_unavailable', `The authorization server for MCP clients is unavailable: ${detail}.`);
  }
}

/** OAuth is off (no OAUTH_ISSUER): the authorization server document does not exist. */
export class OAuthDisabledError extends DomainError {
  constructor() {
    super('not_found', 'OAuth for MCP clients is not configured on this server (OAUTH_ISSUER is unset).');
  }
}
