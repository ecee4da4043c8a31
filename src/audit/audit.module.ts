import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { AuditLogService } from './application/audit-log.service';
import { AuditRecorder } from './application/audit-recorder.service';
import { AuditLogRepository } from './domain/audit-log.repository';
import { AuditLogsController } from './http/audit-logs.controller';
import { TypeOrmAuditLogRepository } from './infrastructure/typeorm-audit-log.repository';

/**
 * Append-only, hash-chained audit log (L1–L3). Other modules use AuditRecorder,
 * never the repository; auditors read it through AuditLogsController.
 */
@Module({
  imports: [AuthModule],
  controllers: [AuditLogsController],
  providers: [AuditRecorder, AuditLogService, { provide: AuditLogRepository, useClass: TypeOrmAuditLogRepository }],
  exports: [AuditRecorder],
})
export class AuditModule {}
