import 'reflect-metadata';
import { LoggerService } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { PermissionScope } from '../api-keys/domain/permission-scope';
import { DevTokenIssuer } from '../auth/dev-token.issuer';
import { Principal, Role, ROLES } from '../auth/principal';
import { AppConfig } from '../config/app-config';
import { InvalidConfigurationError } from '../config/env.validation';
import { EmbeddedPostgres } from '../database/embedded-postgres';
import { SUBSCRIPTION_STATUSES, SubscriptionStatus } from '../plans/domain/plan';
import type { Actor, RequestMeta } from '../shared/domain/actor';
import { DomainError } from '../shared/domain/domain-error';
import type { CliServices } from './services';

/**
 * The operator CLI: `npx tollgate <command>` or `npm run cli -- <command>`.
 * Every command prints a human summary, or one JSON document with `--json`.
 * Exit codes: 0 done, 1 refused or failed, 2 bad usage, 3 audit chain broken.
 *
 * Commands that touch data run the app's own services in a Nest application
 * context of the whole AppModule (./services.ts, loaded only when needed)
 * against DATABASE_URL, or the embedded PostgreSQL
 * in DATA_DIR when it is unset (as `npm start` does); with REDIS_URL, key
 * revocations are broadcast to every running replica.
 */

/** Thrown by a command to end with an exit code after printing its result. */
class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Usage errors found after parsing (bad JSON, bad date): exit 2 like commander's own. */
class UsageError extends Error {}

interface Globals {
  json?: boolean;
}

const REQUEST: RequestMeta = { requestId: null, ip: null, userAgent: 'tollgate-cli' };

function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Who the audit log names for CLI changes: the operator's OS user. */
const ACTOR: Actor = { type: 'system', id: `cli:${operator()}` };
/** The same operator as the admin principal of key commands (audited as a user: a person ran it). */
const OPERATOR_SUB = ACTOR.id;

/** Logs go to stderr so that stdout stays one JSON document with --json. */
const stderrLogger: LoggerService = {
  log: () => undefined,
  warn: (message: unknown) => process.stderr.write(`warn: ${String(message)}\n`),
  error: (message: unknown) => process.stderr.write(`error: ${String(message)}\n`),
};

export function buildProgram(): Command {
  const program = new Command('tollgate')
    .description('Tollgate operator CLI')
    .option('--json', 'print one JSON document instead of human output')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async (_opts, cmd: Command) => {
      await withDatabase(async (url) => {
        const { runMigrations } = await import('../database/data-source');
        const applied = await runMigrations(url);
        print(cmd, { applied }, () => (applied.length ? `Applied ${applied.length} migration(s):\n${applied.map((m) => `  ${m}`).join('\n')}` : 'The database is up to date.'));
      });
    });

  const tenant = program.command('tenant').description('tenants');
  tenant
    .command('create <id>')
    .description('create a tenant (idempotent), optionally on a plan')
    .option('--plan <plan>', 'plan id (default: free)')
    .action(async (id: string, opts: { plan?: string }, cmd: Command) => {
      await withServices(async (svc) => {
        const tenants = svc.tenants;
        const existed = (await tenants.find(id)) !== null;
        await tenants.ensureExists(id);
        if (opts.plan) await svc.subscriptions.change(id, opts.plan, 'active', ACTOR, REQUEST, 'cli');
        const row = await tenants.find(id);
        const result = { id, plan: row?.plan ?? opts.plan ?? 'free', created: !existed };
        print(cmd, result, () => `Tenant ${id} ${existed ? 'already existed' : 'created'}; plan ${result.plan}.`);
      });
    });

  program
    .command('token')
    .description('management tokens')
    .command('dev')
    .description('issue a development admin JWT (HS256 dev secret; refused in production or with JWT_JWKS_URI)')
    .option('--tenant <id>', 'tenant claim', 'demo')
    .option('--sub <sub>', 'subject', 'dev-admin')
    .option('--roles <roles>', `comma-separated roles (${ROLES.join(', ')})`, parseRoles, ['admin'] as Role[])
    .option('--ttl <seconds>', 'lifetime in seconds', parsePositiveInt, 12 * 3600)
    .action(async (opts: { tenant: string; sub: string; roles: Role[]; ttl: number }, cmd: Command) => {
      // Needs no database: only the configuration (and the dev secret in DATA_DIR).
      const issuer = new DevTokenIssuer(new JwtService({}), loadConfig());
      if (!issuer.available) throw new DomainError('forbidden', 'Development tokens need JWT_SECRET (or the generated dev secret), no JWT_JWKS_URI, and NODE_ENV other than production.');
      const token = issuer.issue({ tenantId: opts.tenant, sub: opts.sub, roles: opts.roles, ttlSeconds: opts.ttl });
      const expiresAt = new Date(Date.now() + opts.ttl * 1000).toISOString();
      print(cmd, { token, tenant_id: opts.tenant, sub: opts.sub, roles: opts.roles, expires_at: expiresAt }, () =>
        [`Development token for ${opts.sub} (tenant ${opts.tenant}, roles ${opts.roles.join(',')}), valid until ${expiresAt}:`, '', `  export TOLLGATE_TOKEN=${token}`].join('\n'),
      );
    });

  const key = program.command('key').description('API keys');
  key
    .command('create')
    .description('create an API key (the secret is printed once)')
    .requiredOption('--tenant <id>', 'tenant')
    .requiredOption('--name <name>', 'key name (unique among the tenant\'s live keys)')
    .option('--user <id>', 'owner user id (default: the operator, cli:<os user>)', OPERATOR_SUB)
    .option('--scope <json>', 'permission scope as JSON', '{"mcp_tool_ids":["*"]}')
    .option('--expires <when>', 'ISO date-time, or a duration from now: 30d, 12h, 15m')
    .action(async (opts: { tenant: string; name: string; user: string; scope: string; expires?: string }, cmd: Command) => {
      const scope = parseJson(opts.scope, '--scope');
      const expiresAt = opts.expires === undefined ? null : parseExpiry(opts.expires);
      await withServices(async (svc) => {
        await svc.tenants.ensureExists(opts.tenant);
        const { key: created, token } = await svc.keys.create(
          adminOf(opts.tenant),
          { name: opts.name, permissionScope: scope, expiresAt, userId: opts.user },
          REQUEST,
        );
        const result = {
          id: created.id,
          tenant_id: created.tenantId,
          user_id: created.userId,
          name: created.name,
          start: created.start,
          permission_scope: created.scope.toJSON(),
          expires_at: created.expiresAt?.toISOString() ?? null,
          token,
        };
        print(cmd, result, () =>
          [`Key ${created.name} (${created.id}) created for tenant ${created.tenantId}. The secret is shown once:`, '', `  ${token}`].join('\n'),
        );
      });
    });
  key
    .command('revoke <keyId>')
    .description('revoke an API key now (every replica refuses it at once when REDIS_URL is set)')
    .requiredOption('--tenant <id>', 'tenant that owns the key')
    .action(async (keyId: string, opts: { tenant: string }, cmd: Command) => {
      await withServices(async (svc) => {
        await svc.keys.revoke(adminOf(opts.tenant), keyId, REQUEST);
        print(cmd, { id: keyId, tenant_id: opts.tenant, revoked: true }, () => `Key ${keyId} of tenant ${opts.tenant} is revoked.`);
      });
    });

  program
    .command('plan')
    .description('subscriptions')
    .command('set')
    .description('put a tenant on a plan (audited as plan.changed)')
    .requiredOption('--tenant <id>', 'tenant')
    .requiredOption('--plan <plan>', 'plan id')
    .addOption(new Option('--status <status>', 'subscription status').choices(SUBSCRIPTION_STATUSES).default('active'))
    .action(async (opts: { tenant: string; plan: string; status: SubscriptionStatus }, cmd: Command) => {
      await withServices(async (svc) => {
        await svc.tenants.ensureExists(opts.tenant);
        const subscriptions = svc.subscriptions;
        await subscriptions.change(opts.tenant, opts.plan, opts.status, ACTOR, REQUEST, 'cli');
        const effective = subscriptions.catalog.effective(opts.plan, opts.status).id;
        print(cmd, { tenant_id: opts.tenant, plan: opts.plan, status: opts.status, effective_plan: effective }, () =>
          `Tenant ${opts.tenant} is on plan ${opts.plan} (${opts.status}${effective !== opts.plan ? `; limits of ${effective} apply` : ''}).`,
        );
      });
    });

  program
    .command('credits')
    .description('credit balances')
    .command('grant')
    .description('grant credits to a tenant (idempotent by --reference)')
    .requiredOption('--tenant <id>', 'tenant')
    .requiredOption('--amount <n>', 'credits to add', parsePositiveInt)
    .option('--reference <ref>', 'idempotency reference (default: a new one; not event:… or monthly:…, which are Tollgate\'s own)', parseReference)
    .action(async (opts: { tenant: string; amount: number; reference?: string }, cmd: Command) => {
      await withServices(async (svc) => {
        await svc.tenants.ensureExists(opts.tenant);
        const credits = svc.credits;
        const reference = opts.reference ?? `cli:${randomUUID()}`;
        const applied = await credits.add(opts.tenant, 'grant', opts.amount, reference, ACTOR, REQUEST);
        const balance = await credits.balance(opts.tenant);
        print(cmd, { tenant_id: opts.tenant, amount: opts.amount, reference, applied, balance }, () =>
          applied ? `Granted ${opts.amount} credits to ${opts.tenant}; balance ${balance}.` : `Reference ${reference} was already applied; balance ${balance} (unchanged).`,
        );
      });
    });

  program
    .command('audit')
    .description('audit log')
    .command('verify')
    .description("recompute a tenant's audit hash chain (exit 3 when broken)")
    .requiredOption('--tenant <id>', 'tenant')
    .action(async (opts: { tenant: string }, cmd: Command) => {
      await withServices(async (svc) => {
        const v = await svc.audit.verify(opts.tenant);
        print(cmd, { tenant_id: opts.tenant, valid: v.valid, checked: v.checked, first_broken_id: v.firstBrokenId, head_hash: v.headHash }, () =>
          v.valid
            ? `Audit chain of ${opts.tenant} is intact: ${v.checked} event(s), head ${v.headHash ?? '(empty)'}.`
            : `Audit chain of ${opts.tenant} is BROKEN at event ${v.firstBrokenId} (after ${v.checked - 1} good event(s)).`,
        );
        if (!v.valid) throw new ExitCode(3);
      });
    });

  return program;
}

function adminOf(tenantId: string): Principal {
  return { sub: OPERATOR_SUB, tenantId, roles: ['admin'], scope: PermissionScope.unrestricted() };
}

function print(cmd: Command, result: unknown, human: () => string): void {
  const { json } = cmd.optsWithGlobals<Globals>();
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${human()}\n`);
}

function loadConfig(): AppConfig {
  return AppConfig.fromEnvironment(process.env);
}

/** DATABASE_URL, or the embedded PostgreSQL in DATA_DIR (stopped again when the command ends). */
async function withDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const config = loadConfig();
  if (config.databaseUrl) return work(config.databaseUrl);
  const embedded = new EmbeddedPostgres(config.dataDir);
  const url = await embedded.start();
  process.env.DATABASE_URL = url;
  try {
    return await work(url);
  } finally {
    await embedded.stop();
  }
}

async function withServices<T>(work: (services: CliServices) => Promise<T>): Promise<T> {
  return withDatabase(async (url) => {
    await assertReachable(url);
    const { openServices } = await import('./services');
    const services = await openServices(stderrLogger);
    try {
      return await work(services);
    } finally {
      await services.close();
    }
  });
}

/**
 * One connection attempt before the app context, whose TypeORM module retries
 * for half a minute (right for a replica waiting for its database, not for a
 * one-shot command): a database that cannot be reached is a clear error at once.
 */
async function assertReachable(url: string): Promise<void> {
  const { Client } = await import('pg');
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    const target = new URL(url);
    // Host, port and database only: never the URL's password.
    throw new DomainError('service_unavailable', `Cannot reach PostgreSQL at ${target.hostname}:${target.port || 5432}${target.pathname}: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function parsePositiveInt(raw: string): number {
  if (!/^\d{1,15}$/.test(raw) || Number(raw) <= 0) throw new InvalidArgumentError('must be a positive integer');
  return Number(raw);
}

/**
 * A grant's ledger reference. `event:<id>` (billing webhook purchases) and
 * `monthly:<month>:<plan>` (included credits) are Tollgate's own: a grant
 * holding one would make that purchase or grant a silent duplicate later.
 */
function parseReference(raw: string): string {
  if (/^(event|monthly):/i.test(raw)) throw new InvalidArgumentError('references starting with event: or monthly: are reserved for billing events and monthly grants');
  if (!/^[\x21-\x7e]{1,128}$/.test(raw)) throw new InvalidArgumentError('must be 1-128 printable characters');
  return raw;
}

function parseRoles(raw: string): Role[] {
  const roles = raw.split(',').map((r) => r.trim()).filter(Boolean);
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || bad.length) throw new InvalidArgumentError(`roles must be among ${ROLES.join(', ')}`);
  return roles as Role[];
}

function parseJson(raw: string, flag: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw new UsageError(`${flag} must be JSON, e.g. '{"mcp_tool_ids":["github__*"]}'`);
  }
}

const DURATION = /^(\d{1,6})([dhm])$/;
function parseExpiry(raw: string): Date {
  const d = DURATION.exec(raw);
  if (d) return new Date(Date.now() + Number(d[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[d[2] as 'd' | 'h' | 'm']);
  const at = new Date(raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(at.getTime())) throw new UsageError('--expires must be an ISO date-time or a duration such as 30d, 12h, 15m');
  return at;
}

/** Prints a failure (human or JSON) and returns the exit code. */
function report(err: unknown, json: boolean): number {
  if (err instanceof ExitCode) return err.code;
  if (err instanceof CommanderError) {
    // Commander printed the message (and help); asking for help is success, anything else bad usage.
    return err.exitCode === 0 ? 0 : 2;
  }
  let code = 'internal_error';
  const message = (err as Error)?.message ?? String(err);
  let details: Record<string, unknown> | undefined;
  let exit = 1;
  if (err instanceof DomainError) {
    code = err.code;
    details = err.details;
  } else if (err instanceof InvalidConfigurationError) {
    code = 'invalid_configuration';
  } else if (err instanceof UsageError) {
    code = 'usage';
    exit = 2;
  }
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message, ...(details ?? {}) } }, null, 2)}\n`);
  else process.stderr.write(`tollgate: ${code}: ${message}\n${details ? `${JSON.stringify(details, null, 2)}\n` : ''}`);
  return exit;
}

export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return report(err, argv.includes('--json'));
  }
}

if (require.main === module) {
  void run(process.argv).then((code) => process.exit(code));
}
