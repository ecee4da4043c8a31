import { APIKeyOrmEntity } from '../api-keys/infrastructure/api-key.orm-entity';
import { AuditEventOrmEntity } from '../audit/infrastructure/audit-event.orm-entity';
import { McpServerOrmEntity } from '../mcp/infrastructure/mcp-server.orm-entity';
import { TenantOrmEntity } from '../tenants/infrastructure/tenant.orm-entity';

/** Every ORM entity, listed once for Nest, the CLI and tests. */
export const ORM_ENTITIES = [TenantOrmEntity, APIKeyOrmEntity, AuditEventOrmEntity, McpServerOrmEntity];
