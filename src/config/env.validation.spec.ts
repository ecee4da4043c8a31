import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig } from './app-config';
import { InvalidConfigurationError, validateEnvironment } from './env.validation';

const tmpDataDir = () => mkdtempSync(join(tmpdir(), 'tollgate-config-'));

/** The variables named by each problem line (`NAME: message`, or `A, B: message`). */
function namedIn(err: InvalidConfigurationError): string[] {
  return [...new Set(err.problems.flatMap((p) => p.split(':')[0].split(',').map((n) => n.trim())))].sort();
}

function refusal(env: Record<string, string | undefined>): InvalidConfigurationError {
  try {
    validateEnvironment(env);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigurationError);
    return err as InvalidConfigurationError;
  }
  throw new Error(`expected the configuration to be refused: ${JSON.stringify(env)}`);
}

const PRODUCTION_OK = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://tollgate@db:5432/tollgate',
  JWT_JWKS_URI: 'https://idp.example.com/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example.com/',
  JWT_AUDIENCE: 'tollgate-api',
  API_KEY_PEPPER: 'a-production-pepper-of-32-chars!',
};

describe('validateEnvironment', () => {
  it('accepts an empty environment (every default)', () => {
    const env = validateEnvironment({});
    expect(env.PORT).toBeUndefined();
    expect(env.NODE_ENV).toBeUndefined();
  });

  it('ignores variables it does not read and treats empty strings as unset', () => {
    const env = validateEnvironment({ PATH: '/usr/bin', HOME: '/root', PORT: '', DATABASE_URL: '', JWT_SECRET: '' });
    expect(env.PORT).toBeUndefined();
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('accepts a typical development configuration and converts PORT to a number', () => {
    const env = validateEnvironment({
      NODE_ENV: 'development',
      PORT: '8080',
      HOST: '0.0.0.0',
      PUBLIC_URL: 'http://localhost:8080',
      DATABASE_URL: 'postgresql://u:p@127.0.0.1:5432/db',
      JWT_SECRET: 'x'.repeat(32),
      JWT_TENANT_CLAIM: 'org',
      JWT_ROLES_CLAIM: 'https://tollgate.dev/roles',
      API_KEY_PREFIX: 'acme1',
      KEYS_MAX_PER_TENANT: '500',
    });
    expect(env.PORT).toBe(8080);
    expect(env.KEYS_MAX_PER_TENANT).toBe(500);
    expect(env.API_KEY_PREFIX).toBe('acme1');
  });

  it('accepts a complete production configuration (JWKS, issuer, audience, pepper, no JWT_SECRET)', () => {
    expect(() => validateEnvironment(PRODUCTION_OK)).not.toThrow();
  });

  it('lists every bad variable in one error', () => {
    const err = refusal({
      PORT: 'abc',
      API_KEY_PREFIX: 'Bad_Prefix',
      DATABASE_URL: 'mysql://x',
      JWT_SECRET: 'sekrit-value-9',
    });
    expect(namedIn(err)).toEqual(['API_KEY_PREFIX', 'DATABASE_URL', 'JWT_SECRET', 'PORT']);
    for (const name of ['PORT', 'API_KEY_PREFIX', 'DATABASE_URL', 'JWT_SECRET']) expect(err.message).toContain(name);
    // The message never echoes the secret it refused.
    expect(err.message).not.toContain('sekrit-value-9');
  });

  it.each<[string, string, Record<string, string>]>([
    ['PORT', '70000', {}],
    ['PORT', '-1', {}],
    ['PORT', '80.5', {}],
    ['NODE_ENV', 'staging', {}],
    ['PUBLIC_URL', 'localhost:3000', {}],
    ['PUBLIC_URL', 'ftp://tollgate.example.com', {}],
    ['REDIS_URL', 'http://cache:6379', {}],
    ['JWT_JWKS_URI', 'not a url', { JWT_ISSUER: 'https://idp.example.com/', JWT_AUDIENCE: 'tollgate-api' }],
    ['JWT_TENANT_CLAIM', 'tenant id', {}],
    ['API_KEY_PREFIX', '9tg', {}],
    ['API_KEY_PREFIX', 'averyveryverylongprefix', {}],
    ['API_KEY_PEPPER', 'too-short', {}],
    ['KEYS_MAX_PER_TENANT', '0', {}],
    ['MIGRATIONS_RUN', 'yes', {}],
    ['ADMISSION_COMMIT', 'off', {}],
    ['LOG_LEVEL', 'loud', {}],
    ['TRUST_PROXY', 'yes', {}],
    ['TRUST_PROXY', '10.0.0.0/8; rm', {}],
  ])('refuses %s=%s and names it', (name, value, others) => {
    const err = refusal({ ...others, [name]: value });
    expect(namedIn(err)).toEqual([name]);
  });

  it('refuses JWT_SECRET when NODE_ENV=production, even with a JWKS', () => {
    const err = refusal({ ...PRODUCTION_OK, JWT_SECRET: 'y'.repeat(48) });
    expect(namedIn(err)).toEqual(['JWT_SECRET']);
    expect(err.message).toMatch(/production/);
  });

  it('refuses production without API_KEY_PEPPER', () => {
    const { API_KEY_PEPPER: _omit, ...env } = PRODUCTION_OK;
    expect(namedIn(refusal(env))).toEqual(['API_KEY_PEPPER']);
  });

  it('refuses production without JWT_JWKS_URI (and without any JWT configuration at all)', () => {
    const { JWT_JWKS_URI: _omit, ...env } = PRODUCTION_OK;
    expect(namedIn(refusal(env))).toEqual(['JWT_JWKS_URI']);
    expect(namedIn(refusal({ NODE_ENV: 'production' }))).toEqual(['API_KEY_PEPPER', 'JWT_JWKS_URI']);
  });

  it.each([
    ['without JWT_ISSUER', { JWT_JWKS_URI: 'https://idp.example.com/jwks', JWT_AUDIENCE: 'tollgate-api' }],
    ['without JWT_AUDIENCE', { JWT_JWKS_URI: 'https://idp.example.com/jwks', JWT_ISSUER: 'https://idp.example.com/' }],
    ['without either', { JWT_JWKS_URI: 'https://idp.example.com/jwks' }],
  ])('refuses JWT_JWKS_URI %s', (_label, env) => {
    const err = refusal(env);
    expect(namedIn(err)).toEqual(['JWT_AUDIENCE', 'JWT_ISSUER']);
  });

  it('accepts JWT_JWKS_URI with both issuer and audience outside production', () => {
    expect(() =>
      validateEnvironment({
        JWT_JWKS_URI: 'http://127.0.0.1:9999/.well-known/jwks.json',
        JWT_ISSUER: 'https://idp.test/',
        JWT_AUDIENCE: 'tollgate-api',
      }),
    ).not.toThrow();
  });

  describe('OAuth for MCP clients (OAUTH_*)', () => {
    it('accepts an issuer alone (JWKS discovered, audience defaulted) and a full set', () => {
      expect(() => validateEnvironment({ OAUTH_ISSUER: 'http://127.0.0.1:9999' })).not.toThrow();
      expect(() =>
        validateEnvironment({
          OAUTH_ISSUER: 'https://as.example.com/tenant1',
          OAUTH_JWKS_URI: 'https://as.example.com/jwks',
          OAUTH_AUDIENCE: 'https://gw.example.com/mcp',
          OAUTH_TENANT_CLAIM: 'https://tollgate.dev/tenant',
        }),
      ).not.toThrow();
    });

    it('lists every bad OAUTH_* variable at once', () => {
      const err = refusal({ OAUTH_ISSUER: 'not a url', OAUTH_JWKS_URI: 'ftp://x/jwks', OAUTH_AUDIENCE: 'tollgate', OAUTH_TENANT_CLAIM: 'has space' });
      expect(namedIn(err)).toEqual(['OAUTH_AUDIENCE', 'OAUTH_ISSUER', 'OAUTH_JWKS_URI', 'OAUTH_TENANT_CLAIM']);
    });

    it('refuses OAUTH_JWKS_URI / OAUTH_AUDIENCE / OAUTH_TENANT_CLAIM without OAUTH_ISSUER', () => {
      const err = refusal({ OAUTH_JWKS_URI: 'https://as.example.com/jwks', OAUTH_AUDIENCE: 'https://gw.example.com/mcp' });
      expect(namedIn(err)).toEqual(['OAUTH_AUDIENCE', 'OAUTH_JWKS_URI']);
    });

    it('refuses plain-http OAuth endpoints in production', () => {
      const err = refusal({ ...PRODUCTION_OK, OAUTH_ISSUER: 'http://as.example.com', OAUTH_JWKS_URI: 'http://as.example.com/jwks' });
      expect(namedIn(err)).toEqual(['OAUTH_ISSUER', 'OAUTH_JWKS_URI']);
      expect(() => validateEnvironment({ ...PRODUCTION_OK, OAUTH_ISSUER: 'https://as.example.com' })).not.toThrow();
    });
  });

  it.each<[string, boolean | number | string]>([
    ['false', false],
    ['true', true],
    ['1', 1],
    ['10.0.0.0/8, 192.168.1.5,loopback', '10.0.0.0/8,192.168.1.5,loopback'],
  ])('reads TRUST_PROXY=%s', (value, expected) => {
    expect(() => validateEnvironment({ TRUST_PROXY: value })).not.toThrow();
    expect(AppConfig.fromEnvironment({ TRUST_PROXY: value, DATA_DIR: tmpDataDir() }).trustProxy).toEqual(expected);
  });
});
