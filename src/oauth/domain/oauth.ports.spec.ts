import { authorizationServerMetadataUrls } from './oauth.ports';

describe('authorizationServerMetadataUrls (MCP 2025-11-25 discovery order)', () => {
  it('issuer without a path: RFC 8414 then OpenID', () => {
    expect(authorizationServerMetadataUrls('https://as.example.com/')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server',
      'https://as.example.com/.well-known/openid-configuration',
    ]);
  });

  it('issuer with a path: RFC 8414 path insertion, OpenID path insertion, OpenID path appending', () => {
    expect(authorizationServerMetadataUrls('https://as.example.com/tenant1')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server/tenant1',
      'https://as.example.com/.well-known/openid-configuration/tenant1',
      'https://as.example.com/tenant1/.well-known/openid-configuration',
    ]);
  });
});
