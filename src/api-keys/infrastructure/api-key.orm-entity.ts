import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { PermissionScopeJson } from '../domain/permission-scope';

/** Row shape of `api_keys` (migrations/…-InitialSchema.ts). Not a domain object. */
@Entity({ name: 'api_keys' })
export class APIKeyOrmEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('text', { name: 'tenant_id' }) tenantId: string;
  @Column('text', { name: 'user_id' }) userId: string;
  @Column('text') name: string;
  @Column('char', { name: 'key_hash', length: 64 }) keyHash: string;
  @Column('text') start: string;
  @Column('jsonb', { name: 'permission_scope' }) permissionScope: PermissionScopeJson;
  @Column('boolean') enabled: boolean;
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt: Date | null;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt: Date | null;
  @Column('timestamptz', { name: 'last_used_at', nullable: true }) lastUsedAt: Date | null;
  @Column('uuid', { name: 'rotated_from', nullable: true }) rotatedFrom: string | null;
  @Column('timestamptz', { name: 'grace_until', nullable: true }) graceUntil: Date | null;
  // TypeORM's insert typing cannot express arbitrary JSON objects; the domain keeps Record<string, unknown>.
   
  @Column('jsonb') metadata: Record<string, any>;
  /** bigint: the driver returns a string; the repository maps it to a number. */
  @Column('bigint', { name: 'monthly_credit_cap', nullable: true }) monthlyCreditCap: string | number | null;
  /** The first key of the rotation chain (migrations/…-KeySpendByLineage.ts); NULL on rows of older versions: the key's own id. */
  @Column('uuid', { name: 'lineage_id', nullable: true }) lineageId: string | null;
  @Column('text', { name: 'created_by' }) createdBy: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt: Date;
}
