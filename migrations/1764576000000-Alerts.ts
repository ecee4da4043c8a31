import { MigrationInterface, QueryRunner } from 'typeorm';

/** Outbound alert webhooks (P6): per-tenant settings and a delivery outbox with retries. */
export class Alerts1764576000000 implements MigrationInterface {
  name = 'Alerts1764576000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE alert_settings (
        tenant_id           text PRIMARY KEY REFERENCES tenants(id),
        url                 text NOT NULL,
        secret_encrypted    text NOT NULL,
        credits_threshold   bigint NOT NULL DEFAULT 10 CHECK (credits_threshold >= 0),
        key_expiry_days     integer NOT NULL DEFAULT 7 CHECK (key_expiry_days BETWEEN 1 AND 90),
        updated_at          timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE alert_deliveries (
        id               uuid PRIMARY KEY,
        tenant_id        text NOT NULL REFERENCES tenants(id),
        type             text NOT NULL,
        dedupe_key       text NOT NULL,
        payload          jsonb NOT NULL,
        status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         integer NOT NULL DEFAULT 0,
        next_attempt_at  timestamptz NOT NULL DEFAULT now(),
        last_status      integer,
        last_error       text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        delivered_at     timestamptz,
        CONSTRAINT uq_alert_deliveries_dedupe UNIQUE (tenant_id, dedupe_key)
      )`);
    await q.query(`CREATE INDEX idx_alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alert_deliveries`);
    await q.query(`DROP TABLE alert_settings`);
  }
}
