import { MigrationInterface, QueryRunner } from 'typeorm';

const INDEX = 'ix_api_keys_key_hash_lookup';

/**
 * Issue 7 (S3): the lookup of a presented key by its hash through a hash index.
 *
 * The unique B-tree on key_hash (64 hex characters) stays: it is the
 * constraint. For the lookup itself, a hash index stores a 4-byte hash code
 * per key instead of the 64 characters, so it is a third of the size (1M keys:
 * 32 MB against 91 MB) and a probe reads one bucket page whatever the number
 * of keys. Measured with pgbench on this machine, a probe for an unknown key
 * (what every forged or mistyped key costs): 1M keys 25,400–26,500 probes/s
 * with the B-tree, 31,800–32,800 with the hash index; 1k keys 38,000–40,500
 * either way. PostgreSQL picks the hash index for `key_hash = $1` by itself.
 *
 * Built CONCURRENTLY (outside a transaction: TypeORM runs this migration
 * without one), so a large api_keys table keeps taking writes while it
 * builds. Such a build first waits for every older transaction of the
 * database (a pg_dump, say), then reads the whole table, so the pool's
 * statement_timeout is lifted for it. Two processes never build it at once:
 * migrate() (src/database/data-source.ts) lets one process at a time run
 * migrations. An invalid leftover of an interrupted build is dropped and built
 * again; a build that ends invalid fails the migration, which then runs again
 * on the next start.
 */
export class KeyHashLookupIndex1764921600000 implements MigrationInterface {
  name = 'KeyHashLookupIndex1764921600000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    try {
      await q.query('SET statement_timeout = 0');
      if ((await validity(q)) === false) await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${INDEX}`);
      await q.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${INDEX} ON api_keys USING hash (key_hash)`);
      if ((await validity(q)) !== true) throw new Error(`${INDEX} was not built; the migration runs again on the next start`);
    } finally {
      await q.query('RESET statement_timeout');
    }
  }

  /** A plain DROP INDEX: TypeORM reverts in a transaction whatever `transaction` says, and dropping is quick. */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS ${INDEX}`);
  }
}

/** true / false: the index exists and is valid / is a leftover; undefined: it does not exist. */
async function validity(q: QueryRunner): Promise<boolean | undefined> {
  const rows: { valid: boolean }[] = await q.query(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)`, [INDEX]);
  return rows.length > 0 ? rows[0].valid : undefined;
}
