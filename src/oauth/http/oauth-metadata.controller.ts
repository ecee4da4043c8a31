import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { AnonymousThrottlerGuard } from '../../plans/http/anonymous-throttler.guard';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { AppConfig } from '../../config/app-config';
import { AuthorizationServerMetadataService } from '../application/authorization-server-metadata.service';
import {
  buildProtectedResourceMetadata,
  McpResourcePath,
  ProtectedResourceMetadata,
  ResourceServerSettings,
} from '../domain/protected-resource-metadata';

/**
 * A6 discovery, public: RFC 9728 protected-resource metadata for /mcp (at
 * the root and path-suffixed well-known URLs) and for its alias /api/v1/mcp,
 * and the configured authorization server's RFC 8414 metadata for clients
 * that look for it on the MCP server's origin (2025-03-26 revision).
 * Readable cross-origin: browser-based MCP clients fetch them too.
 */
@ApiTags('discovery')
@UseGuards(AnonymousThrottlerGuard)
@Controller('.well-known')
export class OAuthMetadataController {
  constructor(
    private readonly config: AppConfig,
    private readonly authorizationServer: AuthorizationServerMetadataService,
  ) {}

  @Get(['oauth-protected-resource', 'oauth-protected-resource/mcp'])
  @ApiOperation({ summary: 'RFC 9728 protected-resource metadata of /mcp (resource = OAUTH_AUDIENCE)' })
  @ApiOkResponse({ description: '`resource`, `authorization_servers` (when OAuth is on), `scopes_supported`, `bearer_methods_supported`, `resource_name`.' })
  @Header('Cache-Control', 'public, max-age=300')
  @Header('Access-Control-Allow-Origin', '*')
  mcp(): ProtectedResourceMetadata {
    return this.document('/mcp');
  }

  @Get('oauth-protected-resource/api/v1/mcp')
  @ApiOperation({ summary: 'RFC 9728 protected-resource metadata of the alias /api/v1/mcp' })
  @ApiOkResponse({ description: 'As for /mcp, with `resource` = PUBLIC_URL + /api/v1/mcp.' })
  @Header('Cache-Control', 'public, max-age=300')
  @Header('Access-Control-Allow-Origin', '*')
  alias(): ProtectedResourceMetadata {
    return this.document('/api/v1/mcp');
  }

  /** 404 problem+json when OAuth is off; 503 when the authorization server cannot be read. */
  @Get('oauth-authorization-server')
  @ApiOperation({ summary: "The configured authorization server's RFC 8414 metadata (OAUTH_ISSUER), fetched and cached" })
  @ApiOkResponse({ description: 'The document as the authorization server publishes it.' })
  @ApiNotFoundResponse({ description: 'OAuth is off (OAUTH_ISSUER unset): problem+json `not_found`.' })
  @ApiServiceUnavailableResponse({ description: 'The authorization server cannot be read: problem+json `service_unavailable`.' })
  @Header('Cache-Control', 'public, max-age=300')
  @Header('Access-Control-Allow-Origin', '*')
  authorizationServerMetadata(): Promise<Record<string, unknown>> {
    return this.authorizationServer.metadata();
  }

  private document(path: McpResourcePath): ProtectedResourceMetadata {
    return buildProtectedResourceMetadata(this.settings(), path);
  }

  private settings(): ResourceServerSettings {
    return { publicUrl: this.config.publicUrl, audience: this.config.oauth?.audience ?? null, issuer: this.config.oauth?.issuer ?? null };
  }
}
