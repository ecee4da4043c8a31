import { MigrationInterface, QueryRunner } from 'typeorm';
import { ADMIT_MANY_SQL } from './1764835200000-AdmitBatch';

/**
 * A key's monthly credit cap counts its whole rotation chain.
 *
 * `key_spend` was kept per key id, and a rotation gives the successor a new
 * id with the same cap: it started the month at 0, so rotating a key (which
 * its owner may do) handed out a fresh cap each time.
 *
 * - `api_keys.lineage_id`: the first key of the chain (NULL: the key's own id,
 *   as for first keys, and for rows written by replicas of the previous
 *   version during a rolling upgrade). Existing chains are filled in from
 *   `rotated_from`, through a new partial index on it.
 * - `key_spend.key_id` now holds that lineage id: the month's spend of every
 *   key of a chain is merged into the row of its first key.
 * - `tollgate_admit_many()` charges the cap of the call's lineage: one primary
 *   key probe of `api_keys` per distinct key of a batch. An OAuth subject's
 *   key id is in no `api_keys` row and stays its own lineage. The ledger rows
 *   keep the calling key's id. An admitted call of a capped key also returns
 *   the lineage's spend after it (`key_spent`), so the budget an agent sees
 *   (M6) is what its key may still spend, not the tenant's whole balance.
 * - The refund path (`unspend`) maps the key to its lineage the same way.
 *
 * tollgate_admit() (one call, kept for replicas of two versions back) is left
 * as it was.
 */
export class KeySpendByLineage1765008000000 implements MigrationInterface {
  name = 'KeySpendByLineage1765008000000';

  async up(q: QueryRunner): Promise<void> {
    // Nullable without a default: no table rewrite. First keys keep NULL (their own id).
    await q.query(`ALTER TABLE api_keys ADD COLUMN lineage_id uuid NULL`);
    // The successors of a key, found by index: the walk below is then one probe per rotated key, where a
    // hash join per level of the longest chain cost minutes on a large table (a key rotated daily for
    // years). Built inside this migration's transaction: few rows are rotated ones.
    await q.query(`CREATE INDEX ix_api_keys_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL`);
    await q.query(`SET LOCAL enable_hashjoin = off`);
    await q.query(`SET LOCAL enable_mergejoin = off`);
    await q.query(`
      WITH RECURSIVE chain(id, root) AS (
        SELECT k.id, k.rotated_from FROM api_keys k JOIN api_keys p ON p.id = k.rotated_from
         WHERE k.rotated_from IS NOT NULL AND p.rotated_from IS NULL
        UNION ALL
        SELECT k.id, c.root FROM chain c JOIN api_keys k ON k.rotated_from = c.id
      )
      UPDATE api_keys a SET lineage_id = c.root FROM chain c WHERE a.id = c.id`);
    await q.query(`RESET enable_hashjoin`);
    await q.query(`RESET enable_mergejoin`);
    await q.query(`
      INSERT INTO key_spend (key_id, period, credits)
        SELECT a.lineage_id, s.period, sum(s.credits) FROM key_spend s JOIN api_keys a ON a.id = s.key_id
         WHERE a.lineage_id <> a.id GROUP BY a.lineage_id, s.period
        ON CONFLICT (key_id, period) DO UPDATE SET credits = key_spend.credits + EXCLUDED.credits`);
    await q.query(`DELETE FROM key_spend s USING api_keys a WHERE a.id = s.key_id AND a.lineage_id <> a.id`);
    // Dropped and created again: the result gains a column (key_spent), which CREATE OR REPLACE cannot do.
    // Replicas of the previous version read the columns they know by name.
    await q.query(`DROP FUNCTION ${ADMIT_MANY_SIGNATURE}`);
    await q.query(admitManyByLineage());
  }

  async down(q: QueryRunner): Promise<void> {
    // The merged spends stay on the first key of each chain (what each key spent is not kept apart).
    await q.query(`DROP FUNCTION ${ADMIT_MANY_SIGNATURE}`);
    await q.query(ADMIT_MANY_SQL);
    await q.query(`DROP INDEX ix_api_keys_rotated_from`);
    await q.query(`ALTER TABLE api_keys DROP COLUMN lineage_id`);
  }
}

const ADMIT_MANY_SIGNATURE = 'tollgate_admit_many(text, date, bigint[], bigint[], bigint[], uuid[], text[], bigint[], text[], uuid[], uuid[], bigint[])';

/** tollgate_admit_many() of AdmitBatch, with the cap counted per lineage and the spend of a capped key returned. */
export function admitManyByLineage(): string {
  const edits: [string, string][] = [
    [
      'RETURNS TABLE (ord integer, outcome text, requests bigint, tokens bigint, balance bigint)',
      'RETURNS TABLE (ord integer, outcome text, requests bigint, tokens bigint, balance bigint, key_spent bigint)',
    ],
    ['          ord := i;\n', '          ord := i;\n          key_spent := NULL;\n'],
    [
      "          outcome := 'admitted'; requests := v_requests; tokens := v_tokens; balance := v_balance;",
      `          -- A capped key's spend this month after this call (its lineage's): what the agent may still spend (M6).
          IF p_price[i] > 0 AND p_key_cap[i] IS NOT NULL THEN
            key_spent := s_spent[k] + s_added[k];
          END IF;
          outcome := 'admitted'; requests := v_requests; tokens := v_tokens; balance := v_balance;`,
    ],
    [
      '        k integer;\n',
      `        k integer;
        -- Each distinct key of the batch and the lineage its spend counts under (api_keys.lineage_id).
        v_spend uuid;
        m_key uuid[] := '{}';
        m_spend uuid[] := '{}';
`,
    ],
    [
      `            k := array_position(s_key, p_key[i]);
            IF k IS NULL THEN
              s_key := s_key || p_key[i];`,
      `            k := array_position(m_key, p_key[i]);
            IF k IS NULL THEN
              SELECT coalesce((SELECT a.lineage_id FROM api_keys a WHERE a.id = p_key[i]), p_key[i]) INTO v_spend;
              m_key := m_key || p_key[i]; m_spend := m_spend || v_spend;
            ELSE
              v_spend := m_spend[k];
            END IF;
            k := array_position(s_key, v_spend);
            IF k IS NULL THEN
              s_key := s_key || v_spend;`,
    ],
    [
      'SELECT s.credits INTO v_spent FROM key_spend s WHERE s.key_id = p_key[i] AND s.period = p_period FOR UPDATE;',
      'SELECT s.credits INTO v_spent FROM key_spend s WHERE s.key_id = v_spend AND s.period = p_period FOR UPDATE;',
    ],
  ];
  let sql = ADMIT_MANY_SQL;
  for (const [from, to] of edits) {
    if (sql.split(from).length !== 2) throw new Error(`KeySpendByLineage: the text to change is not in AdmitBatch exactly once: ${from.trim().slice(0, 60)}`);
    sql = sql.replace(from, to);
  }
  return sql;
}
