import { Module } from '@nestjs/common';
import { APIKeysModule } from '../api-keys/api-keys.module';
import { AuthModule } from '../auth/auth.module';
import { PlansModule } from '../plans/plans.module';
import { UsageBuffer } from './application/usage-buffer';
import { UsageService } from './application/usage.service';
import { TokenCounter, UsageRepository } from './domain/usage';
import { AppConfig } from '../config/app-config';
import { BytesTokenCounter, O200kTokenCounter } from './infrastructure/token-counters';
import { UsageController } from './http/usage.controller';
import { TypeOrmUsageRepository } from './infrastructure/typeorm-usage.repository';

/** Usage metering (U1–U4): buffered counters, usage REST, forecast. */
@Module({
  imports: [APIKeysModule, AuthModule, PlansModule],
  controllers: [UsageController],
  providers: [
    UsageBuffer,
    UsageService,
    { provide: UsageRepository, useClass: TypeOrmUsageRepository },
    {
      provide: TokenCounter,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => (config.tokenCounter === 'o200k' ? new O200kTokenCounter() : new BytesTokenCounter()),
    },
  ],
  exports: [UsageBuffer, TokenCounter],
})
export class UsageModule {}
