import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'mcp_servers' })
export class McpServerOrmEntity {
  @PrimaryColumn('uuid') id: string;
  @Column('text', { name: 'tenant_id' }) tenantId: string;
  @Column('text') name: string;
  @Column('text') url: string;
  @Column('text', { name: 'headers_encrypted', nullable: true }) headersEncrypted: string | null;
  @Column('text', { name: 'header_names', array: true }) headerNames: string[];
  @Column('integer', { name: 'timeout_ms' }) timeoutMs: number;
  @Column('jsonb') tools: any[];
  @Column('timestamptz', { name: 'tools_refreshed_at', nullable: true }) toolsRefreshedAt: Date | null;
  @Column('text', { name: 'created_by' }) createdBy: string;
  @Column('timestamptz', { name: 'created_at' }) createdAt: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt: Date;
}
