import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { runMigrations } from '../src/database/data-source';

/**
 * Creates a fresh database for this run from TEST_DATABASE_ADMIN_URL (set by
 * test/run-all.js: the machine's PostgreSQL in CI, the embedded one otherwise)
 * and applies the real migrations. The name must contain "test" (DDH's guard).
 */
export default async function globalSetup(): Promise<void> {
  const admin = process.env.TEST_DATABASE_ADMIN_URL ?? process.env.DATABASE_URL;
  if (!admin) {
    throw new Error('No database for e2e tests: run them with `npm test` (it starts an embedded PostgreSQL), or set DATABASE_URL.');
  }
  const name = `tollgate_e2e_test_${randomBytes(4).toString('hex')}`;
  if (!name.includes('test')) throw new Error('refusing to use a database whose name lacks "test"');
  const client = new Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  process.env.TEST_DATABASE_ADMIN_URL = admin;
  process.env.TEST_DATABASE_NAME = name;
  process.env.DATABASE_URL = url.toString();
  await runMigrations(url.toString());
}
