import { Client } from 'pg';
import { MIGRATIONS } from '../../migrations';
import { runMigrations } from '../../src/database/data-source';
import { createTestApp } from '../support/create-test-app';
import { ThrowawayDatabase, throwawayDatabase } from '../support/throwaway-database';

/** Migrations on a new database: one process at a time (TypeORM itself takes no lock). */
describe('migrations on a new database', () => {
  const databases: ThrowawayDatabase[] = [];
  afterAll(async () => {
    for (const d of databases) await d.drop();
  });

  async function fresh(label: string): Promise<ThrowawayDatabase> {
    const d = await throwawayDatabase(label);
    databases.push(d);
    return d;
  }

  async function recorded(url: string): Promise<{ migrations: string[]; advisoryLocks: number }> {
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      const migrations = (await c.query<{ name: string }>('SELECT name FROM typeorm_migrations ORDER BY id')).rows.map((r) => r.name);
      const locks = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()`,
      );
      return { migrations, advisoryLocks: locks.rows[0].n };
    } finally {
      await c.end();
    }
  }

  const allNames = MIGRATIONS.map((m) => new m().name as string);

  it('three processes migrating at once: each migration runs once, and all of them succeed', async () => {
    const { url } = await fresh('migrate_race');
    const results = await Promise.all([runMigrations(url), runMigrations(url), runMigrations(url)]);
    // One of them applied everything; the others found nothing left once they had the lock.
    expect(results.map((r) => r.length).sort((a, b) => a - b)).toEqual([0, 0, allNames.length]);
    expect(results.find((r) => r.length > 0)).toEqual(allNames);
    expect(await recorded(url)).toEqual({ migrations: allNames, advisoryLocks: 0 });
  }, 120_000);

  it('the app started with MIGRATIONS_RUN (the default) migrates its database under the same lock', async () => {
    const { url } = await fresh('migrate_app');
    const t = await createTestApp({ DATABASE_URL: url, MIGRATIONS_RUN: 'true' });
    try {
      expect((await t.request({ method: 'GET', url: '/health/ready' })).status).toBe(200);
      expect(await recorded(url)).toEqual({ migrations: allNames, advisoryLocks: 0 });
    } finally {
      await t.close();
    }
  }, 120_000);
});
