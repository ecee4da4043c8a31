import { Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from './domain/clock';

/** Cross-cutting ports every module may inject (time). */
@Global()
@Module({
  providers: [{ provide: Clock, useClass: SystemClock }],
  exports: [Clock],
})
export class SharedModule {}
