import { MigrationInterface, QueryRunner } from 'typeorm';

const OLD_SIGNATURE = 'tollgate_admit(text, date, bigint, bigint, bigint, uuid, text, bigint, text, uuid, uuid)';
const NEW_SIGNATURE = 'tollgate_admit(text, date, bigint, bigint, bigint, uuid, text, bigint, text, uuid, uuid, bigint)';

/**
 * Issue 4: an optional monthly credit cap per API key. `key_spend` holds what
 * each key was charged per month (charges minus refunds); tollgate_admit()
 * gains `p_key_cap` (NULL = no cap) and refuses with `key_cap_exceeded` when
 * the call's price would take the key past it — in the same atomic step as
 * the quota and the charge, so the cap is exact under concurrency.
 * For a key with no cap the spend is still counted, so setting a cap mid-month
 * takes what was already spent into account.
 */
export class KeyCreditCap1764748800000 implements MigrationInterface {
  name = 'KeyCreditCap1764748800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys ADD COLUMN monthly_credit_cap bigint NULL
      CONSTRAINT chk_api_keys_monthly_credit_cap CHECK (monthly_credit_cap >= 0)`);
    await q.query(`CREATE TABLE key_spend (
      key_id uuid NOT NULL,
      period date NOT NULL,
      credits bigint NOT NULL DEFAULT 0,
      CONSTRAINT pk_key_spend PRIMARY KEY (key_id, period)
    )`);
    await q.query(`DROP FUNCTION ${OLD_SIGNATURE}`);
    await q.query(`
      CREATE OR REPLACE FUNCTION tollgate_admit(
        p_tenant text, p_period date, p_max_requests bigint, p_max_tokens bigint,
        p_price bigint, p_key uuid, p_tool text,
        p_grant bigint, p_grant_ref text, p_grant_id uuid, p_charge_id uuid,
        p_key_cap bigint)
      RETURNS TABLE (outcome text, requests bigint, tokens bigint, balance bigint)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_requests bigint;
        v_tokens bigint;
        v_balance bigint;
        v_last date;
        v_spent bigint;
      BEGIN
        INSERT INTO quota_counters (tenant_id, period) VALUES (p_tenant, p_period) ON CONFLICT DO NOTHING;
        UPDATE quota_counters q SET requests = q.requests + 1
          WHERE q.tenant_id = p_tenant AND q.period = p_period AND q.requests < p_max_requests AND q.tokens < p_max_tokens
          RETURNING q.requests, q.tokens INTO v_requests, v_tokens;
        IF NOT FOUND THEN
          SELECT q.requests, q.tokens INTO v_requests, v_tokens FROM quota_counters q WHERE q.tenant_id = p_tenant AND q.period = p_period;
          RETURN QUERY SELECT 'quota_exceeded'::text, v_requests, v_tokens, NULL::bigint;
          RETURN;
        END IF;

        INSERT INTO credit_accounts (tenant_id) VALUES (p_tenant) ON CONFLICT DO NOTHING;
        SELECT c.balance, c.last_grant_period INTO v_balance, v_last FROM credit_accounts c WHERE c.tenant_id = p_tenant FOR UPDATE;
        IF p_grant > 0 AND (v_last IS NULL OR v_last < p_period) THEN
          v_balance := v_balance + p_grant;
          v_last := p_period;
          INSERT INTO credit_transactions (id, tenant_id, type, amount, balance_after, reference)
            VALUES (p_grant_id, p_tenant, 'grant', p_grant, v_balance, p_grant_ref);
        END IF;

        IF v_balance < p_price THEN
          -- Refused: give the request back, but keep the month's grant (it is owed whatever this call does).
          UPDATE quota_counters q SET requests = q.requests - 1 WHERE q.tenant_id = p_tenant AND q.period = p_period;
          UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
          RETURN QUERY SELECT 'insufficient_credits'::text, v_requests - 1, v_tokens, v_balance;
          RETURN;
        END IF;

        IF p_key_cap IS NOT NULL AND p_price > 0 THEN
          -- The key's own monthly cap, checked under the tenant's account lock (held above), so it is exact.
          INSERT INTO key_spend (key_id, period) VALUES (p_key, p_period) ON CONFLICT DO NOTHING;
          SELECT s.credits INTO v_spent FROM key_spend s WHERE s.key_id = p_key AND s.period = p_period FOR UPDATE;
          IF v_spent + p_price > p_key_cap THEN
            UPDATE quota_counters q SET requests = q.requests - 1 WHERE q.tenant_id = p_tenant AND q.period = p_period;
            UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
            RETURN QUERY SELECT 'key_cap_exceeded'::text, v_spent, v_tokens, v_balance;
            RETURN;
          END IF;
        END IF;

        IF p_price > 0 THEN
          v_balance := v_balance - p_price;
          INSERT INTO key_spend (key_id, period, credits) VALUES (p_key, p_period, p_price)
            ON CONFLICT (key_id, period) DO UPDATE SET credits = key_spend.credits + EXCLUDED.credits;
          INSERT INTO credit_transactions (id, tenant_id, type, amount, balance_after, key_id, tool)
            VALUES (p_charge_id, p_tenant, 'charge', -p_price, v_balance, p_key, p_tool);
        END IF;
        UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
        RETURN QUERY SELECT 'admitted'::text, v_requests, v_tokens, v_balance;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION ${NEW_SIGNATURE}`);
    await q.query(`
      CREATE FUNCTION tollgate_admit(
        p_tenant text, p_period date, p_max_requests bigint, p_max_tokens bigint,
        p_price bigint, p_key uuid, p_tool text,
        p_grant bigint, p_grant_ref text, p_grant_id uuid, p_charge_id uuid)
      RETURNS TABLE (outcome text, requests bigint, tokens bigint, balance bigint)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_requests bigint;
        v_tokens bigint;
        v_balance bigint;
        v_last date;
      BEGIN
        INSERT INTO quota_counters (tenant_id, period) VALUES (p_tenant, p_period) ON CONFLICT DO NOTHING;
        UPDATE quota_counters q SET requests = q.requests + 1
          WHERE q.tenant_id = p_tenant AND q.period = p_period AND q.requests < p_max_requests AND q.tokens < p_max_tokens
          RETURNING q.requests, q.tokens INTO v_requests, v_tokens;
        IF NOT FOUND THEN
          SELECT q.requests, q.tokens INTO v_requests, v_tokens FROM quota_counters q WHERE q.tenant_id = p_tenant AND q.period = p_period;
          RETURN QUERY SELECT 'quota_exceeded'::text, v_requests, v_tokens, NULL::bigint;
          RETURN;
        END IF;

        INSERT INTO credit_accounts (tenant_id) VALUES (p_tenant) ON CONFLICT DO NOTHING;
        SELECT c.balance, c.last_grant_period INTO v_balance, v_last FROM credit_accounts c WHERE c.tenant_id = p_tenant FOR UPDATE;
        IF p_grant > 0 AND (v_last IS NULL OR v_last < p_period) THEN
          v_balance := v_balance + p_grant;
          v_last := p_period;
          INSERT INTO credit_transactions (id, tenant_id, type, amount, balance_after, reference)
            VALUES (p_grant_id, p_tenant, 'grant', p_grant, v_balance, p_grant_ref);
        END IF;

        IF v_balance < p_price THEN
          -- Refused: give the request back, but keep the month's grant (it is owed whatever this call does).
          UPDATE quota_counters q SET requests = q.requests - 1 WHERE q.tenant_id = p_tenant AND q.period = p_period;
          UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
          RETURN QUERY SELECT 'insufficient_credits'::text, v_requests - 1, v_tokens, v_balance;
          RETURN;
        END IF;

        IF p_price > 0 THEN
          v_balance := v_balance - p_price;
          INSERT INTO credit_transactions (id, tenant_id, type, amount, balance_after, key_id, tool)
            VALUES (p_charge_id, p_tenant, 'charge', -p_price, v_balance, p_key, p_tool);
        END IF;
        UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
        RETURN QUERY SELECT 'admitted'::text, v_requests, v_tokens, v_balance;
      END $$`);
    await q.query(`DROP TABLE key_spend`);
    await q.query(`ALTER TABLE api_keys DROP COLUMN monthly_credit_cap`);
  }
}
