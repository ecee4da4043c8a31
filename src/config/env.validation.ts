import { plainToInstance } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';

/**
 * The environment Tollgate reads, with the names fixed by shared/API.md.
 * Everything is validated at once so a bad start lists every problem in one
 * message (brocoders' discipline).
 */
/** One trusted proxy for TRUST_PROXY, as proxy-addr reads it: an IPv4 or IPv6 address or CIDR, or a named range. */
const PROXY_ENTRY = '(loopback|linklocal|uniquelocal|\\d{1,3}(\\.\\d{1,3}){3}(/\\d{1,2})?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(/\\d{1,3})?)';

export class EnvironmentVariables {
  @IsOptional()
  @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT?: number;

  @IsOptional()
  @IsString()
  HOST?: string;

  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  PUBLIC_URL?: string;

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// connection string' })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  DATA_DIR?: string;

  @IsOptional()
  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  JWT_JWKS_URI?: string;

  @IsOptional()
  @IsString()
  JWT_ISSUER?: string;

  @IsOptional()
  @IsString()
  JWT_AUDIENCE?: string;

  @IsOptional()
  @IsString()
  @MinLength(32, { message: 'JWT_SECRET must be at least 32 characters' })
  JWT_SECRET?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_:./-]{1,128}$/, { message: 'JWT_TENANT_CLAIM must be a claim name' })
  JWT_TENANT_CLAIM?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_:./-]{1,128}$/, { message: 'JWT_ROLES_CLAIM must be a claim name' })
  JWT_ROLES_CLAIM?: string;

  @IsOptional()
  @Matches(/^[a-z][a-z0-9]{0,15}$/, {
    message: 'API_KEY_PREFIX must be 1-16 lowercase letters or digits, starting with a letter',
  })
  API_KEY_PREFIX?: string;

  @IsOptional()
  @IsIn(['live', 'test'])
  API_KEY_ENV?: string;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'API_KEY_PEPPER must be at least 16 characters' })
  API_KEY_PEPPER?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  KEYS_MAX_PER_TENANT?: number;

  @IsOptional()
  @IsIn(['true', 'false'])
  MIGRATIONS_RUN?: string;

  @IsOptional()
  @Matches(new RegExp(`^\\s*(true|false|\\d{1,2}|${PROXY_ENTRY}(\\s*,\\s*${PROXY_ENTRY})*)\\s*$`), {
    message: 'TRUST_PROXY must be false, true, a number of proxy hops (e.g. 1), or a comma-separated list of proxy addresses or CIDRs (e.g. 10.0.0.0/8,loopback)',
  })
  TRUST_PROXY?: string;

  @IsOptional()
  @Matches(/^\s*(\*\.)?[A-Za-z0-9.:[\]-]+\s*(,\s*(\*\.)?[A-Za-z0-9.:[\]-]+\s*)*$/, {
    message: 'UPSTREAM_ALLOWED_HOSTS must be a comma-separated list of host names (`*.example.com` allowed)',
  })
  UPSTREAM_ALLOWED_HOSTS?: string;

  @IsOptional()
  @IsIn(['true', 'false'])
  DEMO?: string;

  @IsOptional()
  @IsString()
  UPSTREAMS_FILE?: string;

  @IsOptional()
  @IsString()
  PLANS_FILE?: string;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'BILLING_WEBHOOK_SECRET must be at least 16 characters' })
  BILLING_WEBHOOK_SECRET?: string;

  /** K9: where the leak reporter publishes its signing keys (GitHub: https://api.github.com/meta/public_keys/secret_scanning). Unset = POST /api/v1/keys/leaks off. */
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }, { message: 'LEAK_REPORT_KEYS_URL must be an http(s) URL' })
  LEAK_REPORT_KEYS_URL?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  DEFAULT_TOOL_PRICE?: number;

  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'log', 'debug', 'verbose', 'silent'])
  LOG_LEVEL?: string;

  /** Authorization server for MCP clients (A5); unset = OAuth off. Must equal the tokens' `iss`. */
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }, { message: 'OAUTH_ISSUER must be an http(s) URL (the issuer identifier of the authorization server)' })
  OAUTH_ISSUER?: string;

  /** Unset = discovered from the issuer's RFC 8414 / OpenID metadata (`jwks_uri`). */
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }, { message: 'OAUTH_JWKS_URI must be an http(s) URL' })
  OAUTH_JWKS_URI?: string;

  /** RFC 8707 resource tokens must be minted for; default `$PUBLIC_URL/mcp`. */
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }, { message: 'OAUTH_AUDIENCE must be an absolute http(s) URL (the resource identifier)' })
  OAUTH_AUDIENCE?: string;

  @IsOptional()
  @Matches(/^[A-Za-z0-9_:./-]{1,128}$/, { message: 'OAUTH_TENANT_CLAIM must be a claim name' })
  OAUTH_TENANT_CLAIM?: string;

  /** Bearer token GET /metrics requires; unset = /metrics answers loopback callers only. */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters' })
  METRICS_TOKEN?: string;

  /** Requests per client IP and minute on public routes (plans, discovery, billing webhook). */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  ANONYMOUS_RATE_LIMIT?: number;

  /** How tool-call tokens are counted: `bytes` (request + response bytes / 4) or `o200k` (a real tokenizer). */
  @IsOptional()
  @IsIn(['bytes', 'o200k'])
  TOKEN_COUNTER?: string;

  /**
   * How a tool call's admission commits: `async` (PostgreSQL's synchronous_commit
   * off for that transaction only) or `sync` (waits for the WAL flush).
   */
  @IsOptional()
  @IsIn(['async', 'sync'])
  ADMISSION_COMMIT?: string;

  /** How long SIGTERM waits for in-flight requests before closing anyway. */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_TIMEOUT_MS?: number;
}

/** Every variable Tollgate reads (API.md "Configuration"). */
export const ENV_NAMES: (keyof EnvironmentVariables)[] = [
  'NODE_ENV', 'PORT', 'HOST', 'PUBLIC_URL', 'DATABASE_URL', 'DATA_DIR', 'REDIS_URL',
  'JWT_JWKS_URI', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_SECRET', 'JWT_TENANT_CLAIM', 'JWT_ROLES_CLAIM',
  'API_KEY_PREFIX', 'API_KEY_ENV', 'API_KEY_PEPPER', 'KEYS_MAX_PER_TENANT', 'MIGRATIONS_RUN', 'TRUST_PROXY', 'LOG_LEVEL',
  'UPSTREAM_ALLOWED_HOSTS', 'DEMO', 'UPSTREAMS_FILE', 'PLANS_FILE',
  'BILLING_WEBHOOK_SECRET', 'DEFAULT_TOOL_PRICE', 'LEAK_REPORT_KEYS_URL',
  'OAUTH_ISSUER', 'OAUTH_JWKS_URI', 'OAUTH_AUDIENCE', 'OAUTH_TENANT_CLAIM',
  'METRICS_TOKEN', 'SHUTDOWN_TIMEOUT_MS', 'TOKEN_COUNTER', 'ANONYMOUS_RATE_LIMIT', 'ADMISSION_COMMIT',
];

const NUMERIC: (keyof EnvironmentVariables)[] = ['PORT', 'KEYS_MAX_PER_TENANT', 'DEFAULT_TOOL_PRICE', 'SHUTDOWN_TIMEOUT_MS', 'ANONYMOUS_RATE_LIMIT'];

export class InvalidConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvalidConfigurationError';
  }
}

/** Validates the raw environment; throws one error listing every bad variable. */
export function validateEnvironment(raw: Record<string, string | undefined>): EnvironmentVariables {
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === '') continue;
    input[k] = NUMERIC.includes(k as keyof EnvironmentVariables) && /^-?\d+$/.test(v) ? Number(v) : v;
  }
  const env = plainToInstance(EnvironmentVariables, input, { enableImplicitConversion: false });
  const problems: string[] = [];
  for (const error of validateSync(env, { skipMissingProperties: false, whitelist: false })) {
    for (const message of Object.values(error.constraints ?? {})) {
      problems.push(`${error.property}: ${message}`);
    }
  }
  const production = env.NODE_ENV === 'production';
  if (production && env.JWT_SECRET) {
    problems.push('JWT_SECRET: HS256 shared secrets are refused when NODE_ENV=production; use JWT_JWKS_URI');
  }
  if (production && !env.JWT_JWKS_URI) {
    problems.push('JWT_JWKS_URI: required when NODE_ENV=production (management JWTs are verified against a JWKS)');
  }
  if (production && !env.API_KEY_PEPPER) {
    problems.push('API_KEY_PEPPER: required when NODE_ENV=production');
  }
  if (env.JWT_JWKS_URI && (!env.JWT_ISSUER || !env.JWT_AUDIENCE)) {
    problems.push('JWT_ISSUER, JWT_AUDIENCE: required with JWT_JWKS_URI (issuer and audience are always checked)');
  }
  const orphans = (['OAUTH_JWKS_URI', 'OAUTH_AUDIENCE', 'OAUTH_TENANT_CLAIM'] as const).filter((k) => env[k] !== undefined);
  if (!env.OAUTH_ISSUER && orphans.length > 0) {
    problems.push(`${orphans.join(', ')}: only meaningful with OAUTH_ISSUER (OAuth for MCP clients is off without it)`);
  }
  if (production) {
    for (const k of ['OAUTH_ISSUER', 'OAUTH_JWKS_URI'] as const) {
      if (env[k] && !/^https:\/\//i.test(env[k]!)) problems.push(`${k}: must be https when NODE_ENV=production`);
    }
  }
  if (problems.length > 0) throw new InvalidConfigurationError(problems);
  return env;
}

