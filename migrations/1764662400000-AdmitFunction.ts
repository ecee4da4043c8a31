import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The admission of a tool call (quota + monthly grant + credit charge + ledger
 * rows) as one server-side function: one round trip instead of eight, and the
 * tenant's quota and credit rows stay locked for microseconds instead of for
 * the whole client-driven transaction (issue 7: the per-tenant ceiling).
 * The semantics are those of CallAdmission (src/plans/application); the e2e
 * suites of issue 4 test them through the API.
 */
export class AdmitFunction1764662400000 implements MigrationInterface {
  name = 'AdmitFunction1764662400000';

  async up(q: QueryRunner): Promise<void> {
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
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION tollgate_admit(text, date, bigint, bigint, bigint, uuid, text, bigint, text, uuid, uuid)`);
  }
}
