import { ValidationFailedError, FieldError } from '../../shared/domain/domain-error';
import { StdioCommand, UPSTREAM_NAME, validateUpstreamHeaders } from './upstream';

/** One entry of UPSTREAMS_FILE. `tenant_id: "*"` exposes the upstream to every tenant. */
export interface OperatorUpstreamSpec {
  tenantId: string;
  name: string;
  url?: string;
  headers: Record<string, string>;
  stdio?: StdioCommand;
  timeoutMs: number;
}

const TENANT = /^(\*|[A-Za-z0-9_.:-]{1,64})$/;

/**
 * Parses the operator's upstream declarations. Operators are trusted (no host
 * allow-list, stdio allowed); the file is still validated strictly so a typo
 * stops start-up with every problem listed.
 */
export function parseOperatorUpstreams(raw: unknown): OperatorUpstreamSpec[] {
  const errors: FieldError[] = [];
  if (!Array.isArray(raw)) throw new ValidationFailedError([{ field: 'UPSTREAMS_FILE', message: 'must contain a JSON array' }]);
  const out: OperatorUpstreamSpec[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, i) => {
    const at = (f: string) => `UPSTREAMS_FILE[${i}].${f}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      errors.push({ field: `UPSTREAMS_FILE[${i}]`, message: 'must be an object' });
      return;
    }
    const e = entry as Record<string, unknown>;
    const known = new Set(['tenant_id', 'name', 'url', 'headers', 'command', 'args', 'env', 'timeout_ms']);
    for (const k of Object.keys(e)) if (!known.has(k)) errors.push({ field: at(k), message: 'is not a known field' });
    const tenantId = typeof e.tenant_id === 'string' && TENANT.test(e.tenant_id) ? e.tenant_id : null;
    if (!tenantId) errors.push({ field: at('tenant_id'), message: 'must be a tenant id or "*"' });
    const name = typeof e.name === 'string' && UPSTREAM_NAME.test(e.name) ? e.name : null;
    if (!name) errors.push({ field: at('name'), message: 'must match ^[a-z0-9-]{1,32}$' });
    const hasUrl = e.url !== undefined;
    const hasCommand = e.command !== undefined;
    if (hasUrl === hasCommand) errors.push({ field: at('url'), message: 'give exactly one of url or command' });
    if (hasUrl && (typeof e.url !== 'string' || !/^https?:\/\/\S+$/.test(e.url))) errors.push({ field: at('url'), message: 'must be an http(s) URL' });
    if (hasCommand && (typeof e.command !== 'string' || e.command.length === 0)) errors.push({ field: at('command'), message: 'must be a non-empty string' });
    const args = e.args ?? [];
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) errors.push({ field: at('args'), message: 'must be an array of strings' });
    const env = stringMap(e.env, at('env'), errors);
    let headers = stringMap(e.headers, at('headers'), errors);
    // The rules an admin's headers follow (names, RFC 9110 values): a value Node cannot send is refused here, not at the first call.
    try {
      headers = validateUpstreamHeaders(headers);
    } catch (err) {
      if (!(err instanceof ValidationFailedError)) throw err;
      for (const fe of err.errors) errors.push({ field: `UPSTREAMS_FILE[${i}].${fe.field}`, message: fe.message });
    }
    const timeout = e.timeout_ms ?? 30_000;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 100 || timeout > 300_000) {
      errors.push({ field: at('timeout_ms'), message: 'must be an integer between 100 and 300000' });
    }
    const key = `${tenantId}/${name}`;
    if (tenantId && name && seen.has(key)) errors.push({ field: at('name'), message: `duplicate upstream ${name} for tenant ${tenantId}` });
    seen.add(key);
    if (tenantId && name) {
      out.push({
        tenantId,
        name,
        ...(hasUrl ? { url: e.url as string } : {}),
        headers,
        ...(hasCommand ? { stdio: { command: e.command as string, args: args as string[], env } } : {}),
        timeoutMs: timeout as number,
      });
    }
  });
  if (errors.length) throw new ValidationFailedError(errors, 'UPSTREAMS_FILE is invalid.');
  return out;
}

function stringMap(v: unknown, field: string, errors: FieldError[]): Record<string, string> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    errors.push({ field, message: 'must be an object of strings' });
    return {};
  }
  return v as Record<string, string>;
}
