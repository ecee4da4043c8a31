import { acceptedAudiences, bearerChallenge, buildProtectedResourceMetadata, metadataUrlFor, resourceFor } from './protected-resource-metadata';

const ON = { publicUrl: 'https://gw.example.com', audience: 'https://gw.example.com/mcp', issuer: 'https://as.example.com' };
const OFF = { publicUrl: 'https://gw.example.com', audience: null, issuer: null };

describe('protected resource metadata (RFC 9728)', () => {
  it('describes /mcp with exactly the RFC 9728 member names, resource = OAUTH_AUDIENCE', () => {
    const doc = buildProtectedResourceMetadata(ON, '/mcp');
    expect(doc).toEqual({
      resource: 'https://gw.example.com/mcp',
      authorization_servers: ['https://as.example.com'],
      scopes_supported: ['mcp:tools'],
      bearer_methods_supported: ['header'],
      resource_name: 'Tollgate',
    });
  });

  it('describes the alias /api/v1/mcp under its own URL (character for character)', () => {
    expect(buildProtectedResourceMetadata(ON, '/api/v1/mcp').resource).toBe('https://gw.example.com/api/v1/mcp');
  });

  it('leaves authorization_servers out when OAuth is off (API keys only)', () => {
    const doc = buildProtectedResourceMetadata(OFF, '/mcp');
    expect(doc.resource).toBe('https://gw.example.com/mcp');
    expect(doc).not.toHaveProperty('authorization_servers');
    expect(doc.bearer_methods_supported).toEqual(['header']);
  });

  it('adds resource_documentation when given', () => {
    expect(buildProtectedResourceMetadata(ON, '/mcp', 'https://docs.example.com').resource_documentation).toBe('https://docs.example.com');
  });

  it('an explicit OAUTH_AUDIENCE is the /mcp resource; the alias stays under PUBLIC_URL', () => {
    const custom = { ...ON, audience: 'https://mcp.example.com/' };
    expect(resourceFor(custom, '/mcp')).toBe('https://mcp.example.com/');
    expect(resourceFor(custom, '/api/v1/mcp')).toBe('https://gw.example.com/api/v1/mcp');
    expect(acceptedAudiences(custom)).toEqual(['https://mcp.example.com/', 'https://gw.example.com/api/v1/mcp']);
  });

  it('path-suffixed well-known URLs (RFC 9728 §3.1)', () => {
    expect(metadataUrlFor(ON, '/mcp')).toBe('https://gw.example.com/.well-known/oauth-protected-resource/mcp');
    expect(metadataUrlFor(ON, '/api/v1/mcp')).toBe('https://gw.example.com/.well-known/oauth-protected-resource/api/v1/mcp');
  });
});

describe('bearerChallenge', () => {
  const rm = 'https://gw.example.com/.well-known/oauth-protected-resource/mcp';

  it('no credential: realm and resource_metadata only', () => {
    expect(bearerChallenge({ resourceMetadata: rm })).toBe(`Bearer realm="tollgate", resource_metadata="${rm}"`);
  });

  it('invalid token with description and scope', () => {
    expect(bearerChallenge({ resourceMetadata: rm, error: 'invalid_token', errorDescription: 'the token has expired', scope: 'mcp:tools' })).toBe(
      `Bearer realm="tollgate", resource_metadata="${rm}", error="invalid_token", error_description="the token has expired", scope="mcp:tools"`,
    );
  });

  it('insufficient scope', () => {
    const h = bearerChallenge({ resourceMetadata: rm, error: 'insufficient_scope', scope: 'mcp:tools' });
    expect(h).toContain('error="insufficient_scope"');
    expect(h).toContain('scope="mcp:tools"');
  });

  it('error_description cannot break out of its quotes', () => {
    const h = bearerChallenge({ resourceMetadata: rm, error: 'invalid_token', errorDescription: 'a "quoted" \\ value\r\nX: y' });
    expect(h).toContain('error_description="a  quoted    value  X: y"');
  });
});
