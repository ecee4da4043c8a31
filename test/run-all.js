#!/usr/bin/env node
/**
 * `npm test`: the whole suite, on any machine.
 *
 * - Unit tests (no I/O), then e2e tests against real PostgreSQL.
 * - PostgreSQL: DATABASE_URL when set (CI sets it to the machine's server);
 *   otherwise an embedded PostgreSQL started here under a temporary DATA_DIR.
 * - Redis: REDIS_URL when set. Without it, Redis-only suites are skipped and
 *   listed, with the reason. With CI=true nothing may be skipped: a missing
 *   DATABASE_URL or REDIS_URL is an error.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

/** Suites that need a real Redis (none can fall back to an in-process store). */
const REDIS_ONLY_SUITES = [
  'test/e2e/replicas.e2e-spec.ts',
  'test/e2e/agent-limits-redis.e2e-spec.ts',
  'test/reliability/redis-outage.e2e-spec.ts',
  'test/reliability/concurrency.e2e-spec.ts',
  'test/reliability/redis-limit-script.e2e-spec.ts',
];

const ci = process.env.CI === 'true' || process.env.CI === '1';
const root = join(__dirname, '..');
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');

function run(args, env) {
  const r = spawnSync(process.execPath, [jest, ...args], { cwd: root, stdio: 'inherit', env });
  return r.status ?? 1;
}

async function main() {
  if (ci && !process.env.DATABASE_URL) fail('CI=true requires DATABASE_URL (the machine\'s PostgreSQL); nothing may fall back.');
  if (ci && !process.env.REDIS_URL) fail('CI=true requires REDIS_URL (the machine\'s Redis); nothing may be skipped.');

  const unit = run(['--config', 'jest.config.js'], process.env);
  if (unit !== 0) process.exit(unit);

  let embedded = null;
  let dataDir = null;
  const env = { ...process.env };
  if (!env.DATABASE_URL) {
    require('ts-node').register({ transpileOnly: true, project: join(root, 'tsconfig.json') });
    const { EmbeddedPostgres } = require('../src/database/embedded-postgres');
    dataDir = mkdtempSync(join(tmpdir(), 'tollgate-test-pg-'));
    require('node:fs').chmodSync(dataDir, 0o711);
    embedded = new EmbeddedPostgres(dataDir);
    process.stdout.write(`DATABASE_URL is unset: starting an embedded PostgreSQL in ${dataDir}\n`);
    env.DATABASE_URL = await embedded.start();
  }
  env.TEST_DATABASE_ADMIN_URL = env.DATABASE_URL;

  const args = ['--config', 'test/jest-e2e.json', '--runInBand'];
  if (!env.REDIS_URL && REDIS_ONLY_SUITES.length > 0) {
    process.stdout.write('REDIS_URL is unset: skipping the Redis-only suites (they test sharing across replicas and the Redis limit script, which need a real Redis):\n');
    for (const s of REDIS_ONLY_SUITES) process.stdout.write(`  - ${s}\n`);
    args.push('--testPathIgnorePatterns', ...REDIS_ONLY_SUITES.map((s) => s.replace(/[.]/g, '\\.')));
  } else if (!env.REDIS_URL) {
    process.stdout.write('REDIS_URL is unset: no suite in this build needs Redis; nothing skipped.\n');
  }
  let code = 1;
  try {
    code = run([...args, ...process.argv.slice(2)], env);
  } finally {
    if (embedded) {
      await embedded.stop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  process.exit(code);
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
