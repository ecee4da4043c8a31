// A real OAuth 2.1 / OpenID authorization server (`oidc-provider`) for the e2e
// tests. oidc-provider 9 is ESM-only and jest runs CommonJS, so the tests start
// this file as a child process (plain `node`). It listens on 127.0.0.1:<free
// port> and prints one JSON line `{"issuer": "...", "url": "..."}` on stdout when
// ready (`url` is where it listens; it differs from `issuer` under OIDC_ISSUER).
//
// Configuration, from the environment (all JSON or plain strings):
//   OIDC_CLIENTS        JSON [{ client_id, client_secret }]: client_credentials clients (client_secret_post or _basic)
//   OIDC_RESOURCES      JSON [resource indicator, ...]: resource servers that get RS256 JWT access tokens, scope `mcp:tools`
//   OIDC_JWKS           JSON { keys: [private JWK, ...] }: signing keys (share them between instances to forge nothing but iss/exp)
//   OIDC_TENANT         value of the `tenant_id` claim added to every access token
//   OIDC_ISSUER         optional: the issuer to claim instead of http://127.0.0.1:<port> (an instance standing in for another one)
//   OIDC_CLOCK_OFFSET_S optional: shift this process's clock (e.g. -3600: tokens minted "an hour ago", already expired)
//   OIDC_TTL_S          optional: access token lifetime in seconds (default 300)
import { createServer } from 'node:http';
import process from 'node:process';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const offsetMs = Number(env.OIDC_CLOCK_OFFSET_S ?? 0) * 1000;
if (offsetMs) {
  const realNow = Date.now;
  Date.now = () => realNow() + offsetMs;
}

const clients = JSON.parse(env.OIDC_CLIENTS ?? '[]');
const resources = new Set(JSON.parse(env.OIDC_RESOURCES ?? '[]'));
const jwks = JSON.parse(env.OIDC_JWKS ?? 'null') ?? undefined;
const tenant = env.OIDC_TENANT ?? 'oidc-tenant';
const ttl = Number(env.OIDC_TTL_S ?? 300);

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;
const issuer = env.OIDC_ISSUER || url;

const provider = new Provider(issuer, {
  jwks,
  cookies: { keys: ['oidc-provider-e2e-cookie-key'] },
  scopes: ['mcp:tools'],
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_post',
    scope: 'mcp:tools',
  })),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resourceIndicator) {
        if (!resources.has(resourceIndicator)) throw new errors.InvalidTarget();
        return { scope: 'mcp:tools', audience: resourceIndicator, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  extraTokenClaims: () => ({ tenant_id: tenant }),
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl },
});

server.on('request', provider.callback());
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ issuer, url })}\n`);
