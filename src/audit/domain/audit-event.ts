import type { Actor, RequestMeta } from '../../shared/domain/actor';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** One append-only audit event (L1). `metadata` must never contain a secret, hash or token. */
export interface AuditEvent {
  id: string;
  occurredAt: Date;
  tenantId: string;
  actor: Actor;
  action: string;
  target: { type: string; id: string } | null;
  outcome: AuditOutcome;
  request: RequestMeta;
  metadata: Record<string, unknown>;
}

export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['success', 'failure', 'denied'];

/** An event linked into its tenant's hash chain (see audit-hash.ts). */
export interface ChainedAuditEvent extends AuditEvent {
  prevHash: string | null;
  hash: string;
}

/** A chained event as stored: `seq` orders a tenant's chain and the auditor's cursors. */
export interface StoredAuditEvent extends ChainedAuditEvent {
  /** bigint as a decimal string. */
  seq: string;
}

/** Keys whose values never enter an audit row, whatever a caller passes. */
const SECRET_KEYS = /^(token|key|secret|key_hash|keyhash|hash|password|authorization|api_key|pepper)$/i;

/** Drops secret-looking members (defence in depth; callers should not pass them at all). */
export function scrubMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (SECRET_KEYS.test(k)) continue;
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? scrubMetadata(v as Record<string, unknown>) : v;
  }
  return out;
}
