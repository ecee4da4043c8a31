import { MigrationInterface, QueryRunner } from 'typeorm';

/** Upstream MCP servers registered by tenant admins, with their discovered tools (issue 3). */
export class McpServers1764316800000 implements MigrationInterface {
  name = 'McpServers1764316800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mcp_servers (
        id                  uuid PRIMARY KEY,
        tenant_id           text NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
        name                text NOT NULL,
        url                 text NOT NULL,
        headers_encrypted   text,
        header_names        text[] NOT NULL DEFAULT '{}',
        timeout_ms          integer NOT NULL DEFAULT 30000,
        tools               jsonb NOT NULL DEFAULT '[]'::jsonb,
        tools_refreshed_at  timestamptz,
        created_by          text NOT NULL,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT chk_mcp_servers_name CHECK (name ~ '^[a-z0-9-]{1,32}$'),
        CONSTRAINT chk_mcp_servers_timeout CHECK (timeout_ms BETWEEN 100 AND 300000),
        CONSTRAINT chk_mcp_servers_tools CHECK (jsonb_typeof(tools) = 'array')
      )`);
    await q.query(`CREATE UNIQUE INDEX uq_mcp_servers_tenant_name ON mcp_servers (tenant_id, name)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE mcp_servers`);
  }
}
