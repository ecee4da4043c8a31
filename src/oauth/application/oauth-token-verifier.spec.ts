import { AppConfig } from '../../config/app-config';
import { JwtCheck, JwtCheckOptions, SignedJwtVerifier } from '../domain/oauth.ports';
import { AuthorizationServerMetadataService } from './authorization-server-metadata.service';
import { OAuthTokenVerifier } from './oauth-token-verifier';

class FakeJwt extends SignedJwtVerifier {
  result: JwtCheck = { ok: true, claims: {} };
  seen: JwtCheckOptions | null = null;
  async verify(_token: string, options: JwtCheckOptions): Promise<JwtCheck> {
    this.seen = options;
    return this.result;
  }
}

function setup(env: Record<string, string> = {}) {
  const config = AppConfig.fromEnvironment({
    PUBLIC_URL: 'https://gw.example.com',
    JWT_SECRET: 'x'.repeat(32),
    API_KEY_PEPPER: 'p'.repeat(16),
    OAUTH_ISSUER: 'https://as.example.com',
    OAUTH_JWKS_URI: 'https://as.example.com/jwks',
    ...env,
  });
  const jwt = new FakeJwt();
  const metadata = { jwksUri: async () => config.oauth?.jwksUri ?? 'unused' } as unknown as AuthorizationServerMetadataService;
  return { verifier: new OAuthTokenVerifier(config, jwt, metadata), jwt };
}

const exp = Math.floor(Date.now() / 1000) + 600;

describe('OAuthTokenVerifier', () => {
  it('checks issuer and this server\'s MCP resources as audiences', async () => {
    const { verifier, jwt } = setup();
    jwt.result = { ok: true, claims: { sub: 'alice', tenant_id: 'acme', scope: 'mcp:tools', exp } };
    await verifier.verify('t');
    expect(jwt.seen).toMatchObject({
      jwksUri: 'https://as.example.com/jwks',
      issuer: 'https://as.example.com',
      audiences: ['https://gw.example.com/mcp', 'https://gw.example.com/api/v1/mcp'],
    });
  });

  it('a valid token becomes an agent principal keyed by subject', async () => {
    const { verifier, jwt } = setup();
    jwt.result = { ok: true, claims: { sub: 'alice', tenant_id: 'acme', scope: 'openid mcp:tools:fake', exp } };
    const r = await verifier.verify('t');
    if (!r.ok) throw new Error(JSON.stringify(r));
    expect(r.principal).toMatchObject({ tenantId: 'acme', userId: 'alice', subject: 'alice', via: 'oauth', actor: { type: 'user', id: 'alice' } });
    expect(r.principal.keyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.principal.scope.toJSON().mcp_tool_ids).toEqual(['fake__*']);
  });

  it('uses OAUTH_TENANT_CLAIM', async () => {
    const { verifier, jwt } = setup({ OAUTH_TENANT_CLAIM: 'org' });
    jwt.result = { ok: true, claims: { sub: 'alice', org: 'acme', tenant_id: 'other', scope: 'mcp:tools', exp } };
    const r = await verifier.verify('t');
    expect(r.ok && r.principal.tenantId).toBe('acme');
  });

  it.each([
    ['no sub', { tenant_id: 'acme', scope: 'mcp:tools', exp }, 'invalid_subject'],
    ['no tenant', { sub: 'a', scope: 'mcp:tools', exp }, 'invalid_tenant'],
    ['a bad tenant id', { sub: 'a', tenant_id: 'a b', scope: 'mcp:tools', exp }, 'invalid_tenant'],
    ['the reserved _unknown tenant', { sub: 'a', tenant_id: '_unknown', scope: 'mcp:tools', exp }, 'invalid_tenant'],
  ])('%s → invalid_token', async (_l, claims, reason) => {
    const { verifier, jwt } = setup();
    jwt.result = { ok: true, claims };
    expect(await verifier.verify('t')).toMatchObject({ ok: false, code: 'invalid_token', reason });
  });

  it('passes JWT refusals through', async () => {
    const { verifier, jwt } = setup();
    jwt.result = { ok: false, reason: 'wrong_audience', detail: 'x' };
    expect(await verifier.verify('t')).toMatchObject({ ok: false, code: 'invalid_token', reason: 'wrong_audience' });
  });

  it('no MCP scope → insufficient_scope with the caller identified', async () => {
    const { verifier, jwt } = setup();
    jwt.result = { ok: true, claims: { sub: 'alice', tenant_id: 'acme', scope: 'openid profile', exp } };
    expect(await verifier.verify('t')).toMatchObject({ ok: false, code: 'insufficient_scope', tenantId: 'acme', subject: 'alice' });
  });
});
