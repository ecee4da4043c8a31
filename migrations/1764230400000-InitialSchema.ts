import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenants, API keys and the append-only audit log (foundation, issue 2).
 * Hand-written: the schema is the contract with PostgreSQL, so every index and
 * constraint is named and reviewed here rather than generated.
 */
export class InitialSchema1764230400000 implements MigrationInterface {
  name = 'InitialSchema1764230400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        id          text PRIMARY KEY,
        plan        text NOT NULL DEFAULT 'free',
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT chk_tenants_id CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$')
      )`);

    await q.query(`
      CREATE TABLE api_keys (
        id               uuid PRIMARY KEY,
        tenant_id        text NOT NULL REFERENCES tenants(id) ON DELETE RESTRICT,
        user_id          text NOT NULL,
        name             text NOT NULL,
        key_hash         char(64) NOT NULL,
        start            text NOT NULL,
        permission_scope jsonb NOT NULL,
        enabled          boolean NOT NULL DEFAULT true,
        expires_at       timestamptz,
        revoked_at       timestamptz,
        last_used_at     timestamptz,
        rotated_from     uuid REFERENCES api_keys(id) ON DELETE SET NULL,
        grace_until      timestamptz,
        metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_by       text NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT chk_api_keys_name CHECK (char_length(name) BETWEEN 1 AND 100),
        CONSTRAINT chk_api_keys_scope CHECK (jsonb_typeof(permission_scope) = 'object'),
        CONSTRAINT chk_api_keys_metadata CHECK (jsonb_typeof(metadata) = 'object')
      )`);
    await q.query(`CREATE UNIQUE INDEX uq_api_keys_key_hash ON api_keys (key_hash)`);
    await q.query(`CREATE INDEX idx_api_keys_tenant_created ON api_keys (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX idx_api_keys_tenant_user ON api_keys (tenant_id, user_id)`);
    await q.query(`CREATE INDEX idx_api_keys_status ON api_keys (tenant_id, enabled, revoked_at)`);
    await q.query(`CREATE INDEX idx_api_keys_expires_at ON api_keys (expires_at) WHERE expires_at IS NOT NULL`);
    // A name is unique among a tenant's live keys: revoked keys and keys being
    // rotated away (grace_until set) free their name.
    await q.query(`
      CREATE UNIQUE INDEX uq_api_keys_tenant_live_name ON api_keys (tenant_id, name)
      WHERE revoked_at IS NULL AND grace_until IS NULL`);

    await q.query(`
      CREATE TABLE audit_events (
        seq          bigserial PRIMARY KEY,
        id           uuid NOT NULL,
        occurred_at  timestamptz NOT NULL DEFAULT now(),
        tenant_id    text NOT NULL,
        actor_type   text NOT NULL,
        actor_id     text NOT NULL,
        action       text NOT NULL,
        target_type  text,
        target_id    text,
        outcome      text NOT NULL,
        ip           text,
        user_agent   text,
        request_id   text,
        metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT uq_audit_events_id UNIQUE (id),
        CONSTRAINT chk_audit_events_actor_type CHECK (actor_type IN ('user', 'api_key', 'service', 'system')),
        CONSTRAINT chk_audit_events_outcome CHECK (outcome IN ('success', 'failure', 'denied'))
      )`);
    await q.query(`CREATE INDEX idx_audit_events_tenant_seq ON audit_events (tenant_id, seq)`);
    await q.query(`CREATE INDEX idx_audit_events_tenant_action ON audit_events (tenant_id, action, seq)`);
    await q.query(`CREATE INDEX idx_audit_events_tenant_target ON audit_events (tenant_id, target_id, seq)`);
    // Append-only, enforced by the database itself: whatever role the app
    // connects with, UPDATE and DELETE on audit rows are refused.
    await q.query(`
      CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER trg_audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()`);
    await q.query(`
      CREATE TRIGGER trg_audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_events`);
    await q.query(`DROP FUNCTION audit_events_append_only()`);
    await q.query(`DROP TABLE api_keys`);
    await q.query(`DROP TABLE tenants`);
  }
}
