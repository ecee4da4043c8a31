import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Row shape of `audit_events`; the table refuses UPDATE, DELETE and TRUNCATE (trigger). */
@Entity({ name: 'audit_events' })
export class AuditEventOrmEntity {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' }) seq: string;
  @Column('uuid') id: string;
  @Column('timestamptz', { name: 'occurred_at' }) occurredAt: Date;
  @Column('text', { name: 'tenant_id' }) tenantId: string;
  @Column('text', { name: 'actor_type' }) actorType: string;
  @Column('text', { name: 'actor_id' }) actorId: string;
  @Column('text') action: string;
  @Column('text', { name: 'target_type', nullable: true }) targetType: string | null;
  @Column('text', { name: 'target_id', nullable: true }) targetId: string | null;
  @Column('text') outcome: string;
  @Column('text', { nullable: true }) ip: string | null;
  @Column('text', { name: 'user_agent', nullable: true }) userAgent: string | null;
  @Column('text', { name: 'request_id', nullable: true }) requestId: string | null;
  // TypeORM's insert typing cannot express arbitrary JSON objects; the domain keeps Record<string, unknown>.
   
  @Column('jsonb') metadata: Record<string, any>;
  @Column('char', { name: 'prev_hash', length: 64, nullable: true }) prevHash: string | null;
  @Column('char', { length: 64 }) hash: string;
}
