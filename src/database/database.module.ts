import { Global, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../shared/domain/unit-of-work';
import { DataSource, DataSourceOptions } from 'typeorm';
import { dataSourceOptions, migrate } from './data-source';
import { TypeOrmUnitOfWork } from './typeorm-unit-of-work';

const logger = new Logger('Database');

/**
 * The TypeORM connection. The URL is DATABASE_URL, or the embedded server's
 * URL that main.ts put there after starting it (see embedded-postgres.ts).
 */
@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        if (!config.databaseUrl) {
          throw new Error('No database: DATABASE_URL is unset and the embedded PostgreSQL was not started');
        }
        return dataSourceOptions(config.databaseUrl, { migrationsRun: config.migrationsRun });
      },
      // MIGRATIONS_RUN: migrated here under migrate()'s lock, not by TypeORM's own migrationsRun (no lock).
      dataSourceFactory: async (options) => {
        const ds = await new DataSource({ ...options!, migrationsRun: false } as DataSourceOptions).initialize();
        if (!options!.migrationsRun) return ds;
        try {
          await migrate(ds, (ms) => logger.warn(`waiting ${Math.round(ms / 1000)} s for another process's migrations to finish`));
          return ds;
        } catch (err) {
          await ds.destroy();
          throw err;
        }
      },
    }),
  ],
  providers: [{ provide: UnitOfWork, useClass: TypeOrmUnitOfWork }],
  exports: [UnitOfWork],
})
export class DatabaseModule {}
