import { Global, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { AuthEventsModule } from '../auth/auth-events.module';
import { AuthorizationServerMetadataService } from './application/authorization-server-metadata.service';
import { OAuthTokenVerifier } from './application/oauth-token-verifier';
import { AuthorizationServerMetadataFetcher, SignedJwtVerifier } from './domain/oauth.ports';
import { OAuthMetadataController } from './http/oauth-metadata.controller';
import { HttpAuthorizationServerMetadataFetcher } from './infrastructure/http-authorization-server-metadata.fetcher';
import { JwksSignedJwtVerifier } from './infrastructure/jwks-signed-jwt.verifier';

/**
 * OAuth 2.1 resource server for MCP clients (A5) and its discovery documents
 * (A6). Global: APIKeyAuthGuard is instantiated in the module of each agent
 * controller and needs OAuthTokenVerifier there. Brings in AuthEventsModule
 * (global too), which audits authentication failures and denials (L1).
 */
@Global()
@Module({
  imports: [JwtModule.register({}), AuthEventsModule],
  controllers: [OAuthMetadataController],
  providers: [
    OAuthTokenVerifier,
    AuthorizationServerMetadataService,
    { provide: SignedJwtVerifier, useClass: JwksSignedJwtVerifier },
    { provide: AuthorizationServerMetadataFetcher, useClass: HttpAuthorizationServerMetadataFetcher },
  ],
  exports: [OAuthTokenVerifier, AuthorizationServerMetadataService],
})
export class OAuthModule {}
