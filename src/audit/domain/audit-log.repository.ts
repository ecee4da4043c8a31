import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { AuditEvent } from './audit-event';

/** Port: the append-only store. There is deliberately no update or delete. */
export abstract class AuditLogRepository {
  abstract append(event: AuditEvent, tx?: TransactionContext): Promise<void>;
  abstract listForTarget(tenantId: string, targetId: string): Promise<AuditEvent[]>;
}
