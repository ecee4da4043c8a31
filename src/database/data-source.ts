import { DataSource, DataSourceOptions } from 'typeorm';
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

/** Applies pending migrations (CLI `migrate`, start-up, test set-up). */
export async function runMigrations(url: string): Promise<string[]> {
  const ds = new DataSource(dataSourceOptions(url));
  await ds.initialize();
  try {
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await ds.destroy();
  }
}
