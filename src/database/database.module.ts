import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../shared/domain/unit-of-work';
import { dataSourceOptions } from './data-source';
import { TypeOrmUnitOfWork } from './typeorm-unit-of-work';

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
    }),
  ],
  providers: [{ provide: UnitOfWork, useClass: TypeOrmUnitOfWork }],
  exports: [UnitOfWork],
})
export class DatabaseModule {}
