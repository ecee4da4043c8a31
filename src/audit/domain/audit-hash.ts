import { createHash } from 'node:crypto';
import type { AuditEvent } from './audit-event';

/**
 * Tamper evidence (L3). Each event's `hash` is the SHA-256 (lower-case hex) of
 * the canonical JSON of a fixed field set, which includes `prev_hash`, the
 * hash of the tenant's previous event (null for a tenant's first event). Any
 * change to a stored event changes its hash; any deletion, insertion or
 * re-ordering breaks the next event's `prev_hash` link.
 *
 * The canonical form is a contract with every stored row: changing it (field
 * names, the timestamp format, the number or string encoding) invalidates
 * every existing chain. Pinned by the known-answer test in audit-hash.spec.ts.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Length of a SHA-256 hex digest. */
export const HASH_LENGTH = 64;

/**
 * Canonical JSON: JSON.stringify's value semantics (toJSON honoured, undefined
 * and functions dropped from objects and turned into null in arrays,
 * non-finite numbers as null) with object keys sorted by UTF-16 code units and
 * no whitespace. Numbers and strings use ECMAScript serialization, so for
 * JSON data this coincides with RFC 8785 (JCS).
 */
export function canonicalJson(value: unknown): string {
  const out = serialize(value, false);
  return out === undefined ? 'null' : out;
}

function serialize(value: unknown, inArray: boolean): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('canonicalJson: bigint is not JSON');
    case 'undefined':
    case 'function':
    case 'symbol':
      return inArray ? 'null' : undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => serialize(v, true)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const v = serialize(obj[key], false);
    if (v !== undefined) members.push(`${JSON.stringify(key)}:${v}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * The JSON value a jsonb column gives back for `value` (what JSON.stringify then
 * JSON.parse produce). Hash what is stored, not what was passed: a Date in
 * metadata is stored as its ISO string, an undefined member disappears.
 */
export function toJsonValue(value: unknown): JsonValue {
  const text = JSON.stringify(value);
  return text === undefined ? null : (JSON.parse(text) as JsonValue);
}

/** The exact field set that is hashed, in the snake_case names of the API. */
export function canonicalAuditContent(event: AuditEvent, prevHash: string | null): string {
  return canonicalJson({
    id: event.id,
    occurred_at: event.occurredAt.toISOString(),
    tenant_id: event.tenantId,
    actor: { type: event.actor.type, id: event.actor.id },
    action: event.action,
    target: event.target ? { type: event.target.type, id: event.target.id } : null,
    outcome: event.outcome,
    // `?? null`: an absent member is stored as NULL and must hash like one.
    ip: event.request.ip ?? null,
    user_agent: event.request.userAgent ?? null,
    request_id: event.request.requestId ?? null,
    metadata: event.metadata ?? {},
    prev_hash: prevHash,
  });
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** SHA-256 hex of the canonical content of `event` chained to `prevHash`. */
export function hashAuditEvent(event: AuditEvent, prevHash: string | null): string {
  return sha256Hex(canonicalAuditContent(event, prevHash));
}

/** A stored event as the chain verifier sees it. */
export interface ChainLink {
  event: AuditEvent;
  prevHash: string | null;
  hash: string;
}

/** Why a link is broken: its content no longer matches its hash, or it does not follow its predecessor. */
export type ChainBreak = 'hash_mismatch' | 'prev_hash_mismatch';

/**
 * Walks one tenant's events in chain (seq) order and stops at the first
 * broken one. A modified event fails `hash_mismatch`; a deleted, inserted or
 * re-ordered event (or a modified one whose hash was recomputed) makes the
 * event after it fail `prev_hash_mismatch`.
 */
export class ChainVerifier {
  private expectedPrev: string | null = null;
  private count = 0;
  private broken: { id: string; reason: ChainBreak } | null = null;

  /** Checks the next link; false once the chain is broken (further links are ignored). */
  accept(link: ChainLink): boolean {
    if (this.broken) return false;
    this.count += 1;
    if (link.prevHash !== this.expectedPrev) {
      this.broken = { id: link.event.id, reason: 'prev_hash_mismatch' };
      return false;
    }
    if (hashAuditEvent(link.event, link.prevHash) !== link.hash) {
      this.broken = { id: link.event.id, reason: 'hash_mismatch' };
      return false;
    }
    this.expectedPrev = link.hash;
    return true;
  }

  get valid(): boolean {
    return this.broken === null;
  }

  /** Links examined, the broken one included. */
  get checked(): number {
    return this.count;
  }

  get firstBroken(): { id: string; reason: ChainBreak } | null {
    return this.broken;
  }

  /** Hash of the last valid link (the chain head when valid; null for an empty chain). */
  get headHash(): string | null {
    return this.expectedPrev;
  }
}
