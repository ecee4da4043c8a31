import { DomainError, FieldError, ValidationFailedError } from '../../shared/domain/domain-error';

/** One reported secret (GitHub secret-scanning partner format: `[{token, type, url, source}]`). */
export interface ReportedToken {
  token: string;
  type: string;
  url: string | null;
  source: string | null;
}

const MAX_TOKEN_LENGTH = 1_024;
const MAX_FIELD_LENGTH = 2_048;

/**
 * Strict parse of a leak report body: a JSON array of objects with a string
 * `token` (and optional string `type`, `url`, `source`). Duplicated tokens are
 * kept once. Every problem is listed in one 422; the token itself never
 * appears in an error.
 */
export function parseLeakReport(raw: Buffer): ReportedToken[] {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new DomainError('malformed_request', 'The body is not valid JSON.');
  }
  if (!Array.isArray(body)) throw new ValidationFailedError([{ field: '(body)', message: 'a leak report is a JSON array of {token, type, url, source}' }]);
  // No cap on the number of entries: GitHub may send many matches at once, and the body limit (1 MiB) bounds them.
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  const out: ReportedToken[] = [];
  body.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      errors.push({ field: `[${i}]`, message: 'must be an object' });
      return;
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.token !== 'string' || e.token.length === 0 || e.token.length > MAX_TOKEN_LENGTH) {
      errors.push({ field: `[${i}].token`, message: `must be a string of 1 to ${MAX_TOKEN_LENGTH} characters` });
      return;
    }
    const optional = (name: 'type' | 'url' | 'source'): string | null => {
      const v = e[name];
      if (v === undefined || v === null) return null;
      if (typeof v !== 'string' || v.length > MAX_FIELD_LENGTH) {
        errors.push({ field: `[${i}].${name}`, message: `must be a string of at most ${MAX_FIELD_LENGTH} characters` });
        return null;
      }
      return v;
    };
    const reported = { token: e.token, type: optional('type') ?? '', url: optional('url'), source: optional('source') };
    if (seen.has(reported.token)) return;
    seen.add(reported.token);
    out.push(reported);
  });
  if (errors.length > 0) throw new ValidationFailedError(errors);
  return out;
}
