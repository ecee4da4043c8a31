import { MigrationInterface, QueryRunner } from 'typeorm';
import type { AuditEvent, AuditOutcome } from '../src/audit/domain/audit-event';
import { hashAuditEvent } from '../src/audit/domain/audit-hash';
import type { ActorType } from '../src/shared/domain/actor';

const BATCH = 1000;
// ORDER BY names `e.seq`, the bigint column, not the text alias (which would sort "10" before "9").
const COLUMNS = `e.seq::text AS seq, id, occurred_at, tenant_id, actor_type, actor_id, action, target_type, target_id,
  outcome, ip, user_agent, request_id, metadata`;

interface Row {
  seq: string;
  id: string;
  occurred_at: Date;
  tenant_id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  metadata: Record<string, unknown>;
}

/**
 * Tamper evidence (issue 5, L3): every audit event stores `hash`, the SHA-256
 * of its canonical content including `prev_hash`, the hash of its tenant's
 * previous event. Existing rows are chained here, per tenant in seq order,
 * with the application's own hashing (src/audit/domain/audit-hash.ts), so
 * `/audit-logs/verify` accepts them.
 */
export class AuditHashChain1764403200000 implements MigrationInterface {
  name = 'AuditHashChain1764403200000';

  async up(q: QueryRunner): Promise<void> {
    // ADD COLUMN takes an ACCESS EXCLUSIVE lock, held to the end of this
    // migration's transaction: no event is appended while the chain is built.
    await q.query(`ALTER TABLE audit_events ADD COLUMN prev_hash char(64), ADD COLUMN hash char(64)`);
    await q.query(`ALTER TABLE audit_events DISABLE TRIGGER trg_audit_events_append_only`);
    let after: { tenant: string; seq: string } | null = null;
    let tenant: string | null = null;
    let prev: string | null = null;
    for (;;) {
      const rows: Row[] = after
        ? await q.query(
            `SELECT ${COLUMNS} FROM audit_events e WHERE (e.tenant_id, e.seq) > ($1, $2::bigint) ORDER BY e.tenant_id, e.seq LIMIT ${BATCH}`,
            [after.tenant, after.seq],
          )
        : await q.query(`SELECT ${COLUMNS} FROM audit_events e ORDER BY e.tenant_id, e.seq LIMIT ${BATCH}`);
      if (rows.length === 0) break;
      const seqs: string[] = [];
      const prevs: (string | null)[] = [];
      const hashes: string[] = [];
      for (const row of rows) {
        if (row.tenant_id !== tenant) {
          tenant = row.tenant_id;
          prev = null;
        }
        const hash = hashAuditEvent(toEvent(row), prev);
        seqs.push(row.seq);
        prevs.push(prev);
        hashes.push(hash);
        prev = hash;
      }
      await q.query(
        `UPDATE audit_events a SET prev_hash = v.prev_hash, hash = v.hash
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(seq, prev_hash, hash) WHERE a.seq = v.seq`,
        [seqs, prevs, hashes],
      );
      const last = rows[rows.length - 1];
      after = { tenant: last.tenant_id, seq: last.seq };
    }
    await q.query(`ALTER TABLE audit_events ENABLE TRIGGER trg_audit_events_append_only`);
    await q.query(`ALTER TABLE audit_events ALTER COLUMN hash SET NOT NULL`);
    await q.query(`ALTER TABLE audit_events ADD CONSTRAINT chk_audit_events_hash CHECK (hash ~ '^[0-9a-f]{64}$')`);
    await q.query(
      `ALTER TABLE audit_events ADD CONSTRAINT chk_audit_events_prev_hash CHECK (prev_hash IS NULL OR prev_hash ~ '^[0-9a-f]{64}$')`,
    );
    // A second event claiming the same predecessor would fork the chain: refused
    // by the database even if a writer ever bypassed the per-tenant lock.
    await q.query(
      `CREATE UNIQUE INDEX uq_audit_events_tenant_prev_hash ON audit_events (tenant_id, (COALESCE(prev_hash, '')))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX uq_audit_events_tenant_prev_hash`);
    await q.query(`ALTER TABLE audit_events DROP CONSTRAINT chk_audit_events_prev_hash, DROP CONSTRAINT chk_audit_events_hash`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN hash, DROP COLUMN prev_hash`);
  }
}

function toEvent(row: Row): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    tenantId: row.tenant_id,
    actor: { type: row.actor_type as ActorType, id: row.actor_id },
    action: row.action,
    target: row.target_type !== null && row.target_id !== null ? { type: row.target_type, id: row.target_id } : null,
    outcome: row.outcome as AuditOutcome,
    request: { requestId: row.request_id, ip: row.ip, userAgent: row.user_agent },
    metadata: row.metadata,
  };
}
