import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EnvironmentVariables, validateEnvironment } from './env.validation';

export interface JwtConfig {
  jwksUri: string | null;
  issuer: string | null;
  audience: string | null;
  /** HS256 secret (development only). */
  secret: string | null;
  /** True when `secret` was generated under DATA_DIR rather than configured. */
  secretGenerated: boolean;
  tenantClaim: string;
  rolesClaim: string;
}

/** OAuth 2.1 resource server for MCP clients (A5/A6); `null` on AppConfig when OAUTH_ISSUER is unset. */
export interface OAuthConfig {
  /** The authorization server's issuer identifier; tokens' `iss` must equal it. */
  issuer: string;
  /** null = discovered from the issuer's metadata (`jwks_uri`). */
  jwksUri: string | null;
  /** The RFC 8707 resource tokens must name in `aud` (default `$PUBLIC_URL/mcp`). */
  audience: string;
  tenantClaim: string;
}

/**
 * Typed, validated configuration. Built once from the environment (and, in
 * development, from secrets generated under DATA_DIR); every consumer injects
 * this class instead of reading process.env.
 */
export class AppConfig {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly redisUrl: string | null;
  readonly jwt: JwtConfig;
  readonly apiKeyPrefix: string;
  readonly apiKeyEnv: 'live' | 'test';
  readonly apiKeyPepper: string;
  readonly pepperGenerated: boolean;
  /** Operator cap on live keys per tenant, below every plan's own limit; null = the plan decides. */
  readonly maxKeysPerTenant: number | null;
  readonly migrationsRun: boolean;
  readonly logLevel: string;
  /** Honour X-Forwarded-For (behind a load balancer). */
  /**
   * Fastify's `trustProxy`: which `X-Forwarded-For` entries to believe for the
   * client address (audit rows, per-address limits, the failed-login brake).
   * `true` believes every entry, including those the client wrote: only safe
   * behind a proxy that overwrites the header. A hop count (`1`: the address
   * the nearest proxy saw) or the proxies' addresses are safe behind any proxy.
   */
  readonly trustProxy: boolean | number | string;
  /** Hosts tenant admins may register as upstreams (SSRF allow-list). */
  readonly upstreamAllowedHosts: string[];
  /** Start and register a demo upstream + key on start (default: embedded mode outside production). */
  readonly demo: boolean;
  /** Operator-declared upstreams (JSON), including stdio commands. */
  readonly upstreamsFile: string | null;
  /** JSON plans overriding or adding to the built-in ones. */
  readonly plansFile: string | null;
  /** HMAC secret of POST /api/v1/billing/webhook; null = webhook off. */
  readonly billingWebhookSecret: string | null;
  /** K9: the leak reporter's public signing keys (GitHub's secret-scanning format); null = POST /api/v1/keys/leaks off. */
  readonly leakReportKeysUrl: string | null;
  /** Credits a tool call costs unless an admin priced the tool. */
  readonly defaultToolPrice: number;
  /** OAuth access tokens on /mcp (A5); null = OAuth off (API keys only). */
  readonly oauth: OAuthConfig | null;
  /** Bearer token for GET /metrics; null = loopback callers only. */
  readonly metricsToken: string | null;
  /** SIGTERM: how long in-flight requests may run before the app closes anyway. */
  readonly shutdownTimeoutMs: number;
  /** Token counting for usage and token quotas: bytes / 4, or the o200k tokenizer. */
  readonly tokenCounter: 'bytes' | 'o200k';
  /** ADMISSION_COMMIT: `async` skips the WAL flush wait for tool-call admissions (see README). */
  readonly admissionCommit: 'async' | 'sync';
  /** Requests per client IP and minute on public routes. */
  readonly anonymousRateLimit: number;

  private constructor(env: EnvironmentVariables) {
    this.nodeEnv = (env.NODE_ENV as AppConfig['nodeEnv']) ?? 'development';
    this.port = env.PORT ?? 3000;
    this.host = env.HOST ?? '127.0.0.1';
    this.publicUrl = (env.PUBLIC_URL ?? `http://localhost:${this.port}`).replace(/\/+$/, '');
    this.databaseUrl = env.DATABASE_URL ?? null;
    this.dataDir = resolve(env.DATA_DIR ?? './.tollgate');
    this.redisUrl = env.REDIS_URL ?? null;
    const production = this.nodeEnv === 'production';
    let jwtSecret = env.JWT_SECRET ?? null;
    let secretGenerated = false;
    if (!jwtSecret && !env.JWT_JWKS_URI && !production) {
      jwtSecret = readOrCreateSecret(this.dataDir, 'dev-jwt-secret');
      secretGenerated = true;
    }
    this.jwt = {
      jwksUri: env.JWT_JWKS_URI ?? null,
      issuer: env.JWT_ISSUER ?? null,
      audience: env.JWT_AUDIENCE ?? null,
      secret: jwtSecret,
      secretGenerated,
      tenantClaim: env.JWT_TENANT_CLAIM ?? 'tenant_id',
      rolesClaim: env.JWT_ROLES_CLAIM ?? 'roles',
    };
    this.apiKeyPrefix = env.API_KEY_PREFIX ?? 'tg';
    this.apiKeyEnv = (env.API_KEY_ENV as 'live' | 'test') ?? 'live';
    this.pepperGenerated = !env.API_KEY_PEPPER;
    this.apiKeyPepper = env.API_KEY_PEPPER ?? readOrCreateSecret(this.dataDir, 'api-key-pepper');
    this.maxKeysPerTenant = env.KEYS_MAX_PER_TENANT ?? null;
    this.migrationsRun = (env.MIGRATIONS_RUN ?? 'true') === 'true';
    this.logLevel = env.LOG_LEVEL ?? 'log';
    this.trustProxy = parseTrustProxy(env.TRUST_PROXY);
    this.upstreamAllowedHosts = (env.UPSTREAM_ALLOWED_HOSTS ?? (production ? '' : 'localhost,127.0.0.1'))
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    this.plansFile = env.PLANS_FILE ? resolve(env.PLANS_FILE) : null;
    this.billingWebhookSecret = env.BILLING_WEBHOOK_SECRET ?? null;
    this.leakReportKeysUrl = env.LEAK_REPORT_KEYS_URL ?? null;
    this.defaultToolPrice = env.DEFAULT_TOOL_PRICE ?? 1;
    this.metricsToken = env.METRICS_TOKEN ?? null;
    this.shutdownTimeoutMs = env.SHUTDOWN_TIMEOUT_MS ?? 10_000;
    this.tokenCounter = (env.TOKEN_COUNTER as 'bytes' | 'o200k') ?? 'bytes';
    this.admissionCommit = (env.ADMISSION_COMMIT as 'async' | 'sync') ?? 'async';
    this.anonymousRateLimit = env.ANONYMOUS_RATE_LIMIT ?? 120;
    this.upstreamsFile = env.UPSTREAMS_FILE ? resolve(env.UPSTREAMS_FILE) : null;
    this.demo = env.DEMO ? env.DEMO === 'true' : !production && !env.DATABASE_URL;
    this.oauth = env.OAUTH_ISSUER
      ? {
          issuer: env.OAUTH_ISSUER,
          jwksUri: env.OAUTH_JWKS_URI ?? null,
          audience: env.OAUTH_AUDIENCE ?? `${this.publicUrl}/mcp`,
          tenantClaim: env.OAUTH_TENANT_CLAIM ?? 'tenant_id',
        }
      : null;
  }

  get production(): boolean {
    return this.nodeEnv === 'production';
  }

  /** Validates `raw` (defaults to process.env); throws InvalidConfigurationError listing every bad variable. */
  static fromEnvironment(raw: Record<string, string | undefined> = process.env): AppConfig {
    return new AppConfig(validateEnvironment(raw));
  }

  /** From variables already validated by ConfigModule (see config.module.ts). */
  static fromValidated(env: EnvironmentVariables): AppConfig {
    return new AppConfig(env);
  }
}

/**
 * Development secrets (HS256 dev key, embedded pepper) live in DATA_DIR with
 * mode 0600 so a restart keeps existing keys and tokens valid.
 */
function readOrCreateSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

function parseTrustProxy(raw: string | undefined): boolean | number | string {
  const value = (raw ?? 'false').trim();
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  return value.split(',').map((a) => a.trim()).join(',');
}
