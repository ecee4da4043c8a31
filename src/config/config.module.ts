import { Global, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AppConfig } from './app-config';
import { validateEnvironment } from './env.validation';

/**
 * @nestjs/config is the fail-fast gate: it validates the environment once and
 * lists every bad variable. The rest of the app injects the typed AppConfig,
 * built from the same (validated) environment when the module compiles.
 */
@Global()
@Module({
  imports: [
    ConfigModule.forRoot({
      ignoreEnvFile: true,
      validate: (raw) => ({ ...validateEnvironment(raw as Record<string, string | undefined>) }),
    }),
  ],
  providers: [{ provide: AppConfig, useFactory: () => AppConfig.fromEnvironment(process.env) }],
  exports: [AppConfig],
})
export class AppConfigModule {}
