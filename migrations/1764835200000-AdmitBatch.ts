import { MigrationInterface, QueryRunner } from 'typeorm';

/** The function as this migration creates it (KeySpendByLineage derives its next version from it). */
export const ADMIT_MANY_SQL = `
      CREATE FUNCTION tollgate_admit_many(
        p_tenant text, p_period date,
        p_max_requests bigint[], p_max_tokens bigint[], p_price bigint[], p_key uuid[], p_tool text[],
        p_grant bigint[], p_grant_ref text[], p_grant_id uuid[], p_charge_id uuid[], p_key_cap bigint[])
      RETURNS TABLE (ord integer, outcome text, requests bigint, tokens bigint, balance bigint)
      LANGUAGE plpgsql AS $$
      DECLARE
        n integer := coalesce(array_length(p_price, 1), 0);
        v_requests bigint;
        v_tokens bigint;
        v_taken bigint := 0;
        v_account boolean := false;
        v_balance bigint;
        v_last date;
        v_spent bigint;
        k integer;
        -- Keys charged in this batch: their spend this month (NULL until a cap needs it) and what the batch adds.
        s_key uuid[] := '{}';
        s_spent bigint[] := '{}';
        s_added bigint[] := '{}';
        -- Ledger rows, in call order.
        l_id uuid[] := '{}';
        l_type text[] := '{}';
        l_amount bigint[] := '{}';
        l_after bigint[] := '{}';
        l_key uuid[] := '{}';
        l_tool text[] := '{}';
        l_ref text[] := '{}';
      BEGIN
        IF n = 0 THEN
          RETURN;
        END IF;
        IF array_length(p_max_requests, 1) IS DISTINCT FROM n OR array_length(p_max_tokens, 1) IS DISTINCT FROM n
           OR array_length(p_key, 1) IS DISTINCT FROM n OR array_length(p_tool, 1) IS DISTINCT FROM n
           OR array_length(p_grant, 1) IS DISTINCT FROM n OR array_length(p_grant_ref, 1) IS DISTINCT FROM n
           OR array_length(p_grant_id, 1) IS DISTINCT FROM n OR array_length(p_charge_id, 1) IS DISTINCT FROM n
           OR array_length(p_key_cap, 1) IS DISTINCT FROM n THEN
          RAISE EXCEPTION 'tollgate_admit_many: every array must hold % calls', n USING ERRCODE = '22023';
        END IF;
        SELECT q.requests, q.tokens INTO v_requests, v_tokens FROM quota_counters q
          WHERE q.tenant_id = p_tenant AND q.period = p_period FOR UPDATE;
        IF NOT FOUND THEN
          INSERT INTO quota_counters (tenant_id, period) VALUES (p_tenant, p_period) ON CONFLICT DO NOTHING;
          SELECT q.requests, q.tokens INTO v_requests, v_tokens FROM quota_counters q
            WHERE q.tenant_id = p_tenant AND q.period = p_period FOR UPDATE;
        END IF;

        FOR i IN 1 .. n LOOP
          ord := i;
          -- coalesce: a NULL limit refuses, as tollgate_admit()'s conditional UPDATE does.
          IF NOT coalesce(v_requests < p_max_requests[i] AND v_tokens < p_max_tokens[i], false) THEN
            outcome := 'quota_exceeded'; requests := v_requests; tokens := v_tokens; balance := NULL;
            RETURN NEXT;
            CONTINUE;
          END IF;
          v_requests := v_requests + 1;
          v_taken := v_taken + 1;

          IF NOT v_account THEN
            SELECT c.balance, c.last_grant_period INTO v_balance, v_last FROM credit_accounts c WHERE c.tenant_id = p_tenant FOR UPDATE;
            IF NOT FOUND THEN
              INSERT INTO credit_accounts (tenant_id) VALUES (p_tenant) ON CONFLICT DO NOTHING;
              SELECT c.balance, c.last_grant_period INTO v_balance, v_last FROM credit_accounts c WHERE c.tenant_id = p_tenant FOR UPDATE;
            END IF;
            v_account := true;
          END IF;
          IF p_grant[i] > 0 AND (v_last IS NULL OR v_last < p_period) THEN
            v_balance := v_balance + p_grant[i];
            v_last := p_period;
            l_id := l_id || p_grant_id[i]; l_type := l_type || 'grant'::text; l_amount := l_amount || p_grant[i];
            l_after := l_after || v_balance; l_key := l_key || NULL::uuid; l_tool := l_tool || NULL::text; l_ref := l_ref || p_grant_ref[i];
          END IF;

          IF v_balance < p_price[i] THEN
            -- Refused: the request is given back; the month's grant is kept (it is owed whatever this call does).
            v_requests := v_requests - 1;
            v_taken := v_taken - 1;
            outcome := 'insufficient_credits'; requests := v_requests; tokens := v_tokens; balance := v_balance;
            RETURN NEXT;
            CONTINUE;
          END IF;

          IF p_price[i] > 0 THEN
            IF p_key[i] IS NULL THEN
              RAISE EXCEPTION 'tollgate_admit_many: call % is charged but has no key', i USING ERRCODE = '22004';
            END IF;
            k := array_position(s_key, p_key[i]);
            IF k IS NULL THEN
              s_key := s_key || p_key[i]; s_spent := s_spent || NULL::bigint; s_added := s_added || 0::bigint;
              k := array_length(s_key, 1);
            END IF;
            IF p_key_cap[i] IS NOT NULL THEN
              IF s_spent[k] IS NULL THEN
                SELECT s.credits INTO v_spent FROM key_spend s WHERE s.key_id = p_key[i] AND s.period = p_period FOR UPDATE;
                s_spent[k] := coalesce(v_spent, 0);
              END IF;
              IF s_spent[k] + s_added[k] + p_price[i] > p_key_cap[i] THEN
                v_requests := v_requests - 1;
                v_taken := v_taken - 1;
                -- As tollgate_admit(): key_cap_exceeded reports the key's spend this month in requests.
                outcome := 'key_cap_exceeded'; requests := s_spent[k] + s_added[k]; tokens := v_tokens; balance := v_balance;
                RETURN NEXT;
                CONTINUE;
              END IF;
            END IF;
            v_balance := v_balance - p_price[i];
            s_added[k] := s_added[k] + p_price[i];
            l_id := l_id || p_charge_id[i]; l_type := l_type || 'charge'::text; l_amount := l_amount || -p_price[i];
            l_after := l_after || v_balance; l_key := l_key || p_key[i]; l_tool := l_tool || p_tool[i]; l_ref := l_ref || NULL::text;
          END IF;
          outcome := 'admitted'; requests := v_requests; tokens := v_tokens; balance := v_balance;
          RETURN NEXT;
        END LOOP;

        IF v_taken <> 0 THEN
          UPDATE quota_counters q SET requests = q.requests + v_taken WHERE q.tenant_id = p_tenant AND q.period = p_period;
        END IF;
        IF v_account THEN
          UPDATE credit_accounts c SET balance = v_balance, last_grant_period = v_last, updated_at = now() WHERE c.tenant_id = p_tenant;
        END IF;
        IF array_length(l_id, 1) > 0 THEN
          INSERT INTO credit_transactions (id, tenant_id, type, amount, balance_after, key_id, tool, reference)
            SELECT l.id, p_tenant, l.kind, l.amount, l.after_balance, l.key_id, l.tool, l.ref
              FROM unnest(l_id, l_type, l_amount, l_after, l_key, l_tool, l_ref) WITH ORDINALITY AS l(id, kind, amount, after_balance, key_id, tool, ref, pos)
              ORDER BY l.pos;
        END IF;
        IF array_length(s_key, 1) > 0 THEN
          INSERT INTO key_spend (key_id, period, credits)
            SELECT s.key_id, p_period, s.added FROM unnest(s_key, s_added) AS s(key_id, added) WHERE s.added > 0
            -- In key order: two tenants' batches can charge the same OAuth subject (its key id does not
            -- depend on the tenant) without holding a common lock; one order for all avoids a deadlock.
            ORDER BY s.key_id
            ON CONFLICT (key_id, period) DO UPDATE SET credits = key_spend.credits + EXCLUDED.credits;
        END IF;
      END $$`;

/**
 * Issue 7: admissions of one tenant in batches.
 *
 * Every admission of a tenant locks the same two rows (its quota counter and
 * its credit account), so concurrent admissions of a tenant run one after the
 * other whatever the pool size, and each pays a whole transaction: lock waits
 * and wake-ups, a new row version of each hot row, a commit. Measured with
 * pgbench on this machine: ~700 µs of PostgreSQL CPU per admission at 10
 * concurrent admissions of one tenant, ~270 µs when the same admissions come
 * ten to a statement.
 *
 * tollgate_admit_many() takes the calls queued for one (tenant, month) in
 * order and decides each exactly as tollgate_admit() would if they ran one
 * after the other: quota (+1, given back on a refusal), the month's grant
 * (once, kept even if the call that triggered it is refused), the balance
 * check, the key's monthly cap, the charge and its ledger row with the
 * balance after it. The rows are locked once (quota counter first, then the
 * credit account, then key_spend rows: the order tollgate_admit() and the
 * refund path use, so old and new replicas cannot deadlock during a rolling
 * upgrade) and written once at the end; the ledger rows are inserted in call
 * order. A key with no cap never reads key_spend (its spend is added once).
 * One difference no reader can see: tollgate_admit() left a key_spend row of 0
 * behind a refused cap check; this function writes key_spend only for charges
 * (a missing row already reads as 0 everywhere).
 *
 * tollgate_admit() stays: replicas of the previous version call it until
 * they are replaced.
 */
export class AdmitBatch1764835200000 implements MigrationInterface {
  name = 'AdmitBatch1764835200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(ADMIT_MANY_SQL);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `DROP FUNCTION tollgate_admit_many(text, date, bigint[], bigint[], bigint[], uuid[], text[], bigint[], text[], uuid[], uuid[], bigint[])`,
    );
  }
}
