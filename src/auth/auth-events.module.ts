import { Global, Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import { AuthEventsRecorder } from './auth-events.recorder';

/**
 * Global so every module's guards (JwtAuthGuard, RolesGuard, APIKeyAuthGuard
 * are instantiated in the module of the controller they guard) can audit
 * refusals without each module importing AuditModule, and without a cycle
 * (AuditModule itself imports AuthModule for its own guards).
 */
@Global()
@Module({
  imports: [AuditModule],
  providers: [AuthEventsRecorder],
  exports: [AuthEventsRecorder],
})
export class AuthEventsModule {}
