/**
 * SEP-2243 (MCP 2026-07-28): a Streamable HTTP request mirrors its JSON-RPC
 * `method` in `Mcp-Method`, and the name it addresses (`params.name` of
 * tools/call and prompts/get, `params.uri` of resources/read) in `Mcp-Name`,
 * so intermediaries can route without parsing bodies. A value that cannot
 * travel as a plain header value is sent as `=?base64?<base64 of UTF-8>?=`.
 * When both are present, the header and the body must agree.
 */

export const MCP_METHOD_HEADER = 'mcp-method';
export const MCP_NAME_HEADER = 'mcp-name';
/** JSON-RPC error code of a header that contradicts the body (SEP-2243 HeaderMismatch). */
export const HEADER_MISMATCH_RPC_CODE = -32001;

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** A header value for `value`: as it is when it is visible ASCII, else the Base64 sentinel. */
export function encodeHeaderValue(value: string): string {
  return PLAIN.test(value) && !value.startsWith('=?base64?') ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The value a header carries (the sentinel decoded); null when the sentinel is malformed. */
export function decodeHeaderValue(header: string): string | null {
  const trimmed = header.trim();
  if (!trimmed.startsWith('=?base64?')) return trimmed;
  const m = SENTINEL.exec(trimmed);
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : null;
}

/** What a JSON-RPC message implies for the two headers (null: the message is not a request, or addresses no name). */
export function mirroredValues(message: unknown): { method: string | null; name: string | null } {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { method: null, name: null };
  const m = message as { method?: unknown; id?: unknown; params?: { name?: unknown; uri?: unknown } };
  if (typeof m.method !== 'string' || m.id === undefined) return { method: null, name: null };
  let name: unknown = null;
  if (m.method === 'tools/call' || m.method === 'prompts/get') name = m.params?.name;
  else if (m.method === 'resources/read') name = m.params?.uri;
  return { method: m.method, name: typeof name === 'string' ? name : null };
}

/**
 * Why the headers contradict the body, or null when they agree. Absent
 * headers are not a mismatch: clients of revisions before 2026-07-28 do not
 * send them. Only single requests are checked (batches do not exist in the
 * revisions that define the headers).
 */
export function headerMismatch(headers: Record<string, string | string[] | undefined>, body: unknown): string | null {
  const expected = mirroredValues(body);
  if (expected.method === null) return null;
  const method = single(headers[MCP_METHOD_HEADER]);
  if (method !== undefined && method.trim() !== expected.method) return `Mcp-Method "${method.trim()}" does not match the body's method "${expected.method}"`;
  const nameHeader = single(headers[MCP_NAME_HEADER]);
  if (nameHeader === undefined) return null;
  const name = decodeHeaderValue(nameHeader);
  if (name === null) return 'Mcp-Name is not a valid =?base64?…?= value';
  if (expected.name === null) return `Mcp-Name is set but ${expected.method} addresses no name`;
  if (name !== expected.name) return `Mcp-Name does not match the name in the body`;
  return null;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
