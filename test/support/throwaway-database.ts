import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

/** A database of its own on the test server (for migration tests), and how to drop it. */
export interface ThrowawayDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Created on the server of TEST_DATABASE_ADMIN_URL (else DATABASE_URL), named `tollgate_<label>_test_<random>`. */
export async function throwawayDatabase(label: string): Promise<ThrowawayDatabase> {
  const admin = process.env.TEST_DATABASE_ADMIN_URL ?? process.env.DATABASE_URL!;
  const name = `tollgate_${label}_test_${randomUUID().slice(0, 8)}`;
  await onAdmin(admin, `CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => onAdmin(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function onAdmin(admin: string, sql: string): Promise<void> {
  const c = new Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
