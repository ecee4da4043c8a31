import { Module } from '@nestjs/common';
import { AuditRecorder } from './application/audit-recorder.service';
import { AuditLogRepository } from './domain/audit-log.repository';
import { TypeOrmAuditLogRepository } from './infrastructure/typeorm-audit-log.repository';

/** Append-only audit log (L1). Other modules use AuditRecorder, never the repository. */
@Module({
  providers: [AuditRecorder, { provide: AuditLogRepository, useClass: TypeOrmAuditLogRepository }],
  exports: [AuditRecorder],
})
export class AuditModule {}
