import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { dataSourceOptions, runMigrations } from '../../src/database/data-source';
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

/** KeySpendByLineage on a database that already has rotation chains and spends. */
describe('migration KeySpendByLineage on existing keys', () => {
  let database: ThrowawayDatabase;
  afterAll(async () => database?.drop());

  it('gives every rotated key the first key of its chain, and merges the month\'s spends onto it', async () => {
    database = await throwawayDatabase('lineage');
    const ds = new DataSource(dataSourceOptions(database.url));
    await ds.initialize();
    try {
      // Everything before it.
      const names = MIGRATIONS.map((m) => new m().name as string);
      await ds.runMigrations({ transaction: 'each' });
      for (let i = names.length - 1; i >= names.indexOf('KeySpendByLineage1765008000000'); i--) await ds.undoLastMigration();
      await ds.query(`INSERT INTO tenants (id, plan) VALUES ('ten-lineage', 'free')`);
      const ids = { a: randomUUID(), b: randomUUID(), c: randomUUID(), x: randomUUID() };
      const key = (id: string, from: string | null, n: number) =>
        ds.query(
          `INSERT INTO api_keys (id, tenant_id, user_id, name, key_hash, start, permission_scope, enabled, rotated_from, grace_until, metadata, created_by)
           VALUES ($1, 'ten-lineage', 'u', $2, $3, 'tg_live_x', '{}', true, $4, $5, '{}', 'u')`,
          [id, `k${n}`, String(n).padStart(64, '0'), from, null],
        );
      // A → B → C (C the live one), and X alone.
      await key(ids.a, null, 1);
      await ds.query(`UPDATE api_keys SET grace_until = now() WHERE id = $1`, [ids.a]);
      await key(ids.b, ids.a, 2);
      await ds.query(`UPDATE api_keys SET grace_until = now() WHERE id = $1`, [ids.b]);
      await key(ids.c, ids.b, 3);
      await key(ids.x, null, 4);
      for (const [id, credits] of [[ids.a, 2], [ids.b, 3], [ids.c, 4], [ids.x, 5]] as const) {
        await ds.query(`INSERT INTO key_spend (key_id, period, credits) VALUES ($1, '2026-11-01', $2)`, [id, credits]);
      }
      const applied = await ds.runMigrations({ transaction: 'each' });
      expect(applied.map((m) => m.name)).toEqual(names.slice(names.indexOf('KeySpendByLineage1765008000000')));
      const lineage = await ds.query(`SELECT id, lineage_id FROM api_keys WHERE tenant_id = 'ten-lineage'`);
      expect(Object.fromEntries(lineage.map((r: { id: string; lineage_id: string | null }) => [r.id, r.lineage_id]))).toEqual({
        [ids.a]: null, // a first key: its own id
        [ids.b]: ids.a,
        [ids.c]: ids.a,
        [ids.x]: null,
      });
      const spends = await ds.query(`SELECT key_id, credits::int AS credits FROM key_spend ORDER BY credits`);
      expect(spends).toEqual([
        { key_id: ids.x, credits: 5 },
        { key_id: ids.a, credits: 9 },
      ]);
    } finally {
      await ds.destroy();
    }
  }, 120_000);
});
