import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { dataSourceOptions, runMigrations } from '../../src/database/data-source';
import { ThrowawayDatabase, throwawayDatabase } from '../support/throwaway-database';

/**
 * Issue 7 (S3): a presented key is looked up through a hash index on
 * api_keys.key_hash (built concurrently by its migration), next to the unique
 * B-tree that keeps hashes unique.
 */
/** KeyHashLookupIndex and the migrations after it: what is undone to undo it. */
const NAMES = MIGRATIONS.map((m) => new m().name as string);
const SINCE = NAMES.slice(NAMES.indexOf('KeyHashLookupIndex1764921600000'));

async function undoSince(ds: DataSource): Promise<void> {
  for (let i = 0; i < SINCE.length; i++) await ds.undoLastMigration();
}

describe('key hash lookup index (migration KeyHashLookupIndex)', () => {
  let database: ThrowawayDatabase;
  let url: string;
  let db: Client;

  beforeAll(async () => {
    database = await throwawayDatabase('keyhash');
    url = database.url;
    await runMigrations(url);
    db = new Client({ connectionString: url });
    await db.connect();
  }, 60_000);

  afterAll(async () => {
    await db?.end();
    await database?.drop();
  });

  const indexes = async () =>
    (
      await db.query<{ indexname: string; indexdef: string; valid: boolean }>(
        `SELECT i.indexname, i.indexdef, x.indisvalid AS valid
           FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid
          WHERE i.tablename = 'api_keys' AND i.indexdef LIKE '%(key_hash)%' ORDER BY i.indexname`,
      )
    ).rows;

  it('api_keys has the unique B-tree (the constraint) and a valid hash index on key_hash', async () => {
    const found = await indexes();
    expect(found.map((i) => [i.indexname, /USING (\w+)/.exec(i.indexdef)?.[1], i.valid, i.indexdef.includes('UNIQUE')])).toEqual([
      ['ix_api_keys_key_hash_lookup', 'hash', true, false],
      ['uq_api_keys_key_hash', 'btree', true, true],
    ]);
  });

  it("PostgreSQL answers the verifier's lookup by key_hash with the hash index", async () => {
    await db.query('BEGIN');
    try {
      // A freshly migrated table is empty, where a sequential scan is cheapest: rule it out to see which index is chosen.
      await db.query('SET LOCAL enable_seqscan = off');
      const plan = await db.query(`EXPLAIN SELECT id FROM api_keys WHERE key_hash = $1`, ['a'.repeat(64)]);
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('ix_api_keys_key_hash_lookup');
    } finally {
      await db.query('ROLLBACK');
    }
  });

  it('reverts (the index goes) and applies again (CREATE INDEX CONCURRENTLY, outside a transaction)', async () => {
    const ds = new DataSource(dataSourceOptions(url));
    await ds.initialize();
    try {
      await undoSince(ds);
      expect((await indexes()).map((i) => i.indexname)).toEqual(['uq_api_keys_key_hash']);
      const applied = await ds.runMigrations({ transaction: 'each' });
      expect(applied.map((m) => m.name)).toEqual(SINCE);
      expect((await indexes()).map((i) => i.indexname)).toEqual(['ix_api_keys_key_hash_lookup', 'uq_api_keys_key_hash']);
    } finally {
      await ds.destroy();
    }
  });

  const revert = async () => {
    const ds = new DataSource(dataSourceOptions(url));
    await ds.initialize();
    try {
      await undoSince(ds);
    } finally {
      await ds.destroy();
    }
  };
  const lookupIndex = async () => (await indexes()).find((i) => i.indexname === 'ix_api_keys_key_hash_lookup');

  it('an invalid leftover of an interrupted build is dropped and built again', async () => {
    await revert();
    // What a build cut short leaves: the index in the catalog, marked invalid.
    await db.query(`CREATE INDEX ix_api_keys_key_hash_lookup ON api_keys USING hash (key_hash)`);
    await db.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_api_keys_key_hash_lookup'::regclass`);
    expect((await lookupIndex())?.valid).toBe(false);
    expect(await runMigrations(url)).toEqual(SINCE);
    expect((await lookupIndex())?.valid).toBe(true);
  });

  it('two processes migrating at once both succeed, and the index is valid', async () => {
    await revert();
    const both = await Promise.all([runMigrations(url), runMigrations(url)]);
    expect(both.flat()).toContain('KeyHashLookupIndex1764921600000');
    expect((await lookupIndex())?.valid).toBe(true);
    // Nothing left to apply, and the build lock is free.
    expect(await runMigrations(url)).toEqual([]);
    const lock = await db.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()`);
    expect(lock.rows[0].n).toBe(0);
  });
});
