import type { AuditEventResponseDto } from './audit-log.dto';

/** One NDJSON line: the API's JSON of the event, then LF. */
export function ndjsonLine(e: AuditEventResponseDto): string {
  return `${JSON.stringify(e)}\n`;
}

export const CSV_COLUMNS = [
  'id',
  'occurred_at',
  'tenant_id',
  'actor_type',
  'actor_id',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'ip',
  'user_agent',
  'request_id',
  'metadata',
  'prev_hash',
  'hash',
] as const;

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One RFC 4180 record (CRLF); metadata as compact JSON. */
export function csvRow(e: AuditEventResponseDto): string {
  const values: Record<(typeof CSV_COLUMNS)[number], string | null> = {
    id: e.id,
    occurred_at: e.occurred_at,
    tenant_id: e.tenant_id,
    actor_type: e.actor.type,
    actor_id: e.actor.id,
    action: e.action,
    target_type: e.target?.type ?? null,
    target_id: e.target?.id ?? null,
    outcome: e.outcome,
    ip: e.ip,
    user_agent: e.user_agent,
    request_id: e.request_id,
    metadata: JSON.stringify(e.metadata),
    prev_hash: e.prev_hash,
    hash: e.hash,
  };
  return `${CSV_COLUMNS.map((c) => csvField(values[c])).join(',')}\r\n`;
}

/**
 * RFC 4180 quoting (fields holding a comma, quote, CR or LF are quoted, quotes
 * doubled). A value a spreadsheet would run as a formula (leading =, +, -, @,
 * tab or CR: user agents and metadata are caller-controlled) is prefixed with
 * an apostrophe, as OWASP advises; NDJSON is the verbatim, verifiable format.
 */
export function csvField(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
