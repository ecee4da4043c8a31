import { DataSource, DataSourceOptions, QueryRunner } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { ORM_ENTITIES } from './orm-entities';

/**
 * The one TypeORM options object, used by Nest (TypeOrmModule.forRootAsync),
 * the operator CLI and the test set-up alike. The schema comes from
 * migrations/ only: `synchronize` is always false.
 */
export function dataSourceOptions(url: string, overrides: Partial<DataSourceOptions> = {}): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ORM_ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    // TypeORM's error log prints failed queries with their parameters (key hashes):
    // never log them; unexpected errors reach the problem filter's log instead.
    logging: false,
    extra: {
      max: 20,
      // Fail fast while PostgreSQL is down or restarting: a request waits at most this long
      // for a connection, then gets 503 service_unavailable (issue 8 §3).
      connectionTimeoutMillis: 2_000,
      // Fail a stuck statement instead of hanging a request forever.
      statement_timeout: 15_000,
      application_name: 'tollgate',
    },
    ...overrides,
  } as DataSourceOptions;
}

/** Applies pending migrations (CLI `migrate`, test set-up; start-up goes through migrate()). */
export async function runMigrations(url: string): Promise<string[]> {
  const ds = new DataSource(dataSourceOptions(url));
  await ds.initialize();
  try {
    return await migrate(ds);
  } finally {
    await ds.destroy();
  }
}

/** The advisory lock that lets one process at a time migrate a database. */
const MIGRATION_LOCK = 'tollgate:migrations';
const LOCK_POLL_MS = 250;
const WAIT_REPORT_MS = 10_000;

/**
 * Applies pending migrations, one process at a time per database: TypeORM
 * takes no lock, and every replica migrates at start-up unless
 * MIGRATIONS_RUN=false, so two replicas starting together on a new database
 * both ran the first migration and one of them failed. The lock is a session
 * advisory lock on a connection of its own, polled with short statements:
 * a session waiting inside pg_advisory_lock() would hold a snapshot that a
 * CREATE INDEX CONCURRENTLY in the other process's migrations waits for.
 * `onWait` hears every 10 s of waiting.
 */
export async function migrate(ds: DataSource, onWait?: (waitedMs: number) => void): Promise<string[]> {
  const lock = ds.createQueryRunner();
  await lock.connect();
  try {
    const started = Date.now();
    let reported = started;
    while (!(await tryLock(lock))) {
      if (onWait && Date.now() - reported >= WAIT_REPORT_MS) {
        reported = Date.now();
        onWait(reported - started);
      }
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
    try {
      const applied = await ds.runMigrations({ transaction: 'each' });
      return applied.map((m) => m.name);
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK]);
    }
  } finally {
    await lock.release();
  }
}

async function tryLock(runner: QueryRunner): Promise<boolean> {
  const rows: { locked: boolean }[] = await runner.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [MIGRATION_LOCK]);
  return rows[0].locked;
}
