import { MigrationInterface, QueryRunner } from 'typeorm';

/** Subscriptions, monthly quota counters, the credit ledger, tool prices, usage buckets, billing events (issue 4). */
export class PlansCreditsUsage1764489600000 implements MigrationInterface {
  name = 'PlansCreditsUsage1764489600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenants
        ADD COLUMN subscription_status text NOT NULL DEFAULT 'active',
        ADD COLUMN alert_webhook_url text,
        ADD CONSTRAINT chk_tenants_subscription_status CHECK (subscription_status IN ('active', 'past_due', 'canceled'))`);

    // Exact monthly counters: admission is one conditional UPDATE on this row.
    await q.query(`
      CREATE TABLE quota_counters (
        tenant_id  text NOT NULL REFERENCES tenants(id),
        period     date NOT NULL,
        requests   bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
        tokens     bigint NOT NULL DEFAULT 0 CHECK (tokens >= 0),
        PRIMARY KEY (tenant_id, period)
      )`);

    await q.query(`
      CREATE TABLE credit_accounts (
        tenant_id   text PRIMARY KEY REFERENCES tenants(id),
        balance     bigint NOT NULL DEFAULT 0,
        -- The month whose included credits were granted last (grants happen once a month, lazily).
        last_grant_period date,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT chk_credit_accounts_balance CHECK (balance >= 0)
      )`);
    await q.query(`
      CREATE TABLE credit_transactions (
        seq            bigserial PRIMARY KEY,
        id             uuid NOT NULL UNIQUE,
        tenant_id      text NOT NULL REFERENCES tenants(id),
        type           text NOT NULL CHECK (type IN ('grant', 'purchase', 'charge', 'refund')),
        amount         bigint NOT NULL,
        balance_after  bigint NOT NULL CHECK (balance_after >= 0),
        key_id         uuid,
        tool           text,
        reference      text,
        created_at     timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX idx_credit_transactions_tenant_seq ON credit_transactions (tenant_id, seq DESC)`);
    // A monthly grant or a purchase event applies once per tenant.
    await q.query(`CREATE UNIQUE INDEX uq_credit_transactions_reference ON credit_transactions (tenant_id, reference) WHERE type IN ('grant', 'purchase')`);
    await q.query(`CREATE INDEX idx_credit_transactions_key_month ON credit_transactions (key_id, created_at) WHERE key_id IS NOT NULL`);

    await q.query(`
      CREATE TABLE tool_prices (
        tenant_id  text NOT NULL REFERENCES tenants(id),
        tool       text NOT NULL,
        price      integer NOT NULL CHECK (price >= 0),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, tool)
      )`);

    await q.query(`
      CREATE TABLE usage_buckets (
        tenant_id     text NOT NULL,
        key_id        uuid NOT NULL,
        user_id       text NOT NULL,
        tool          text NOT NULL,
        bucket_start  timestamptz NOT NULL,
        requests      bigint NOT NULL DEFAULT 0,
        tokens        bigint NOT NULL DEFAULT 0,
        credits       bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, key_id, tool, bucket_start)
      )`);
    await q.query(`CREATE INDEX idx_usage_buckets_tenant_time ON usage_buckets (tenant_id, bucket_start)`);
    await q.query(`CREATE INDEX idx_usage_buckets_key_time ON usage_buckets (key_id, bucket_start)`);

    await q.query(`
      CREATE TABLE billing_events (
        id           text PRIMARY KEY,
        type         text NOT NULL,
        tenant_id    text,
        received_at  timestamptz NOT NULL DEFAULT now(),
        payload      jsonb NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE billing_events`);
    await q.query(`DROP TABLE usage_buckets`);
    await q.query(`DROP TABLE tool_prices`);
    await q.query(`DROP TABLE credit_transactions`);
    await q.query(`DROP TABLE credit_accounts`);
    await q.query(`DROP TABLE quota_counters`);
    await q.query(`ALTER TABLE tenants DROP CONSTRAINT chk_tenants_subscription_status, DROP COLUMN alert_webhook_url, DROP COLUMN subscription_status`);
  }
}
