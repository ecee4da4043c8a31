import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, TestApp } from '../support/create-test-app';
import { TEST_JWT_SECRET, TEST_PEPPER } from '../support/env';
import { managementToken, uniqueName, uniqueTenant, verifyKey } from '../support/factories';

/**
 * Issue 6 §7: the operator CLI run as a user runs it (`node bin/tollgate.js`,
 * what `npx tollgate` executes), as a child process against the run's
 * database; each command's exit code, its --json output and its effect in
 * PostgreSQL; a key it creates verifies through the app and is refused once
 * it revokes it.
 */
const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'tollgate.js');
const TIMEOUT = 60_000;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

describe('operator CLI (e2e, child process)', () => {
  let t: TestApp;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    t = await createTestApp();
  });

  afterAll(async () => {
    await t?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function cli(...args: string[]): Promise<CliResult> {
    return cliWith({}, ...args);
  }

  function cliWith(overrides: Record<string, string>, ...args: string[]): Promise<CliResult> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: process.env.DATABASE_URL!,
      JWT_SECRET: TEST_JWT_SECRET,
      API_KEY_PEPPER: TEST_PEPPER,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
      ...overrides,
    };
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env, timeout: TIMEOUT }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        let json: unknown = undefined;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code, stdout, stderr, json });
      });
    });
  }

  const rows = (sql: string, params: unknown[]) => t.db.query(sql, params) as Promise<Record<string, any>[]>;

  it('migrate: the run\'s database is already migrated, nothing to apply', async () => {
    const [r, human] = await Promise.all([cli('migrate', '--json'), cli('migrate')]);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ applied: [] });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('up to date');
  }, TIMEOUT);

  it('a database that cannot be reached is service_unavailable at once (exit 1), naming host and port, never the password', async () => {
    const res = await cliWith({ DATABASE_URL: 'postgres://postgres:s3cretpw@127.0.0.1:1/nowhere' }, 'tenant', 'create', uniqueTenant('cli-down'), '--json');
    expect(res.code).toBe(1);
    expect(res.json).toMatchObject({ error: { code: 'service_unavailable', message: expect.stringContaining('127.0.0.1:1/nowhere') } });
    expect(res.stdout + res.stderr).not.toContain('s3cretpw');
    // Without the probe, TypeORM retried for half a minute ("Unable to connect to the database. Retrying (n)...").
    expect(res.stderr).not.toMatch(/Retrying/);
  }, TIMEOUT);

  it('tenant create: creates the tenant on the plan, idempotently', async () => {
    const tenant = uniqueTenant('cli');
    const r = await cli('tenant', 'create', tenant, '--plan', 'pro', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ id: tenant, plan: 'pro', created: true });
    expect(await rows(`SELECT plan, subscription_status FROM tenants WHERE id = $1`, [tenant])).toEqual([{ plan: 'pro', subscription_status: 'active' }]);
    const again = await cli('tenant', 'create', tenant, '--json');
    expect(again.code).toBe(0);
    expect(again.json).toEqual({ id: tenant, plan: 'pro', created: false });
  }, TIMEOUT);

  it('token dev: a JWT the app accepts as the tenant\'s admin', async () => {
    const tenant = uniqueTenant('cli-token');
    const r = await cli('--json', 'token', 'dev', '--tenant', tenant, '--sub', 'ops-1', '--roles', 'admin,auditor');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ tenant_id: tenant, sub: 'ops-1', roles: ['admin', 'auditor'] });
    const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: r.json.token });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
    const bad = await cli('token', 'dev', '--roles', 'root');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('roles must be among');
  }, TIMEOUT);

  it('key create → verified by the app → key revoke → refused by the app', async () => {
    const tenant = uniqueTenant('cli-key');
    const service = managementToken({ tenantId: tenant, roles: ['service'] });
    const name = uniqueName('cli');
    const created = await cli('key', 'create', '--tenant', tenant, '--name', name, '--user', 'agent-owner', '--scope', '{"mcp_tool_ids":["github__*"]}', '--expires', '30d', '--json');
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({ tenant_id: tenant, name, user_id: 'agent-owner', permission_scope: { mcp_tool_ids: ['github__*'] } });
    expect(created.json.token).toMatch(/^tg_live_/);
    const expires = new Date(created.json.expires_at).getTime();
    expect(Math.abs(expires - (Date.now() + 30 * 86_400_000))).toBeLessThan(120_000);
    const [row] = await rows(`SELECT name, user_id, revoked_at, key_hash FROM api_keys WHERE id = $1`, [created.json.id]);
    expect(row).toMatchObject({ name, user_id: 'agent-owner', revoked_at: null });
    expect(row.key_hash).not.toContain(created.json.token);
    // Audited as the CLI's operator.
    const [event] = await rows(`SELECT actor_type, actor_id FROM audit_events WHERE tenant_id = $1 AND action = 'api_key.created'`, [tenant]);
    expect(event.actor_type).toBe('user');
    expect(event.actor_id).toMatch(/^cli:/);

    const valid = await verifyKey(t, service, { key: created.json.token });
    expect(valid.body).toMatchObject({ valid: true, key_id: created.json.id, tenant_id: tenant });

    const revoked = await cli('key', 'revoke', created.json.id, '--tenant', tenant, '--json');
    expect(revoked.code).toBe(0);
    expect(revoked.json).toEqual({ id: created.json.id, tenant_id: tenant, revoked: true });
    expect((await rows(`SELECT revoked_at FROM api_keys WHERE id = $1`, [created.json.id]))[0].revoked_at).not.toBeNull();

    // With Redis the running app hears the CLI's broadcast and drops its cached copy at once;
    // without it, a replica that cached the key keeps it up to the cache TTL, so ask a fresh app.
    const app = process.env.REDIS_URL ? t : await createTestApp();
    try {
      const refused = await verifyKey(app, service, { key: created.json.token });
      expect(refused.body).toMatchObject({ valid: false, code: 'revoked_key' });
    } finally {
      if (app !== t) await app.close();
    }

    const [unknown, usage, badScope] = await Promise.all([
      cli('key', 'revoke', '00000000-0000-4000-8000-000000000000', '--tenant', tenant, '--json'),
      cli('key', 'create', '--tenant', tenant),
      cli('key', 'create', '--tenant', tenant, '--name', uniqueName(), '--scope', '{"nope":1}', '--json'),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.json.error.code).toBe('not_found');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--name <name>'");
    expect(badScope.code).toBe(1);
    expect(badScope.json.error.code).toBe('validation_failed');
    expect(await rows(`SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1`, [tenant])).toEqual([{ n: 1 }]);
  }, 4 * TIMEOUT);

  it('plan set: changes the plan (audited); an unknown plan changes nothing', async () => {
    const tenant = uniqueTenant('cli-plan');
    const r = await cli('plan', 'set', '--tenant', tenant, '--plan', 'enterprise', '--status', 'past_due', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ tenant_id: tenant, plan: 'enterprise', status: 'past_due', effective_plan: 'free' });
    expect(await rows(`SELECT plan, subscription_status FROM tenants WHERE id = $1`, [tenant])).toEqual([{ plan: 'enterprise', subscription_status: 'past_due' }]);
    const events = await rows(`SELECT action FROM audit_events WHERE tenant_id = $1 AND action = 'plan.changed'`, [tenant]);
    expect(events).toHaveLength(1);
    const [bad, badStatus] = await Promise.all([
      cli('plan', 'set', '--tenant', tenant, '--plan', 'no-such-plan', '--json'),
      cli('plan', 'set', '--tenant', tenant, '--plan', 'pro', '--status', 'paused'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.json.error.code).toBe('validation_failed');
    expect(badStatus.code).toBe(2);
    expect(await rows(`SELECT plan FROM tenants WHERE id = $1`, [tenant])).toEqual([{ plan: 'enterprise' }]);
  }, 2 * TIMEOUT);

  it('credits grant: adds to the balance once per reference', async () => {
    const tenant = uniqueTenant('cli-credits');
    const first = await cli('credits', 'grant', '--tenant', tenant, '--amount', '25', '--reference', 'invoice-1', '--json');
    expect(first.code).toBe(0);
    expect(first.json).toEqual({ tenant_id: tenant, amount: 25, reference: 'invoice-1', applied: true, balance: 25 });
    const again = await cli('credits', 'grant', '--tenant', tenant, '--amount', '25', '--reference', 'invoice-1', '--json');
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ applied: false, balance: 25 });
    expect(await rows(`SELECT amount::int AS amount, type FROM credit_transactions WHERE tenant_id = $1`, [tenant])).toEqual([{ amount: 25, type: 'grant' }]);
    const bad = await cli('credits', 'grant', '--tenant', tenant, '--amount', '-3');
    expect(bad.code).toBe(2);
    // A billing event's reference is the webhook's: taking it here would make that purchase a silent duplicate.
    const reserved = await cli('credits', 'grant', '--tenant', tenant, '--amount', '5', '--reference', 'event:evt_123');
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain('reserved');
    expect(await rows(`SELECT count(*)::int AS n FROM credit_transactions WHERE tenant_id = $1`, [tenant])).toEqual([{ n: 1 }]);
  }, 2 * TIMEOUT);

  it('audit verify: intact chain exits 0; a rewritten event exits 3 and is named', async () => {
    const tenant = uniqueTenant('cli-audit');
    expect((await cli('tenant', 'create', tenant)).code).toBe(0);
    const setup = await Promise.all([cli('credits', 'grant', '--tenant', tenant, '--amount', '5'), cli('plan', 'set', '--tenant', tenant, '--plan', 'pro')]);
    expect(setup.map((r) => r.code)).toEqual([0, 0]);
    const ok = await cli('audit', 'verify', '--tenant', tenant, '--json');
    expect(ok.code).toBe(0);
    const ids = (await rows(`SELECT id, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq`, [tenant]));
    expect(ok.json).toEqual({ tenant_id: tenant, valid: true, checked: ids.length, first_broken_id: null, head_hash: ids[ids.length - 1].hash });

    await t.db.transaction(async (m) => {
      await m.query(`ALTER TABLE audit_events DISABLE TRIGGER trg_audit_events_append_only`);
      await m.query(`UPDATE audit_events SET metadata = '{"amount":5000}' WHERE id = $1`, [ids[0].id]);
      await m.query(`ALTER TABLE audit_events ENABLE TRIGGER trg_audit_events_append_only`);
    });
    const [broken, human] = await Promise.all([cli('audit', 'verify', '--tenant', tenant, '--json'), cli('audit', 'verify', '--tenant', tenant)]);
    expect(broken.code).toBe(3);
    expect(broken.json).toMatchObject({ valid: false, first_broken_id: ids[0].id, head_hash: null });
    expect(human.code).toBe(3);
    expect(human.stdout).toContain('BROKEN');
  }, 3 * TIMEOUT);
});
