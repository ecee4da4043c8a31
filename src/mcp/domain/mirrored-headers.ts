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
/** JSON-RPC error code of a header that contradicts the body: HeaderMismatch in the 2026-07-28 specification (the SEP's draft said -32001). */
export const HEADER_MISMATCH_RPC_CODE = -32020;

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** HTTP optional whitespace only (not String.prototype.trim's Unicode spaces). */
const OWS = /^[ \t]+|[ \t]+$/g;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A header value for `value`: as it is when it is visible ASCII, else the Base64 sentinel. */
export function encodeHeaderValue(value: string): string {
  return PLAIN.test(value) && !value.startsWith(SENTINEL_PREFIX) ? value : `${SENTINEL_PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${SENTINEL_SUFFIX}`;
}

/**
 * The value a header carries. A value that starts with `=?base64?` and ends
 * with `?=` is the sentinel and must hold canonical, padded Base64 of valid
 * UTF-8 (null otherwise: Node's own Base64 decoder would accept more than a
 * strict intermediary does); anything else is taken literally.
 */
export function decodeHeaderValue(header: string): string | null {
  const value = header.replace(OWS, '');
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX) && value.length >= SENTINEL_PREFIX.length + SENTINEL_SUFFIX.length)) return value;
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!BASE64.test(b64) || b64.length % 4 !== 0) return null;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) return null; // non-canonical (stray bits in the padding)
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * What a JSON-RPC message implies for the two headers: the method of a
 * request or a notification (null for a response), and the name a request
 * addresses (null when it addresses none).
 */
export function mirroredValues(message: unknown): { method: string | null; name: string | null } {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { method: null, name: null };
  const m = message as { method?: unknown; id?: unknown; params?: { name?: unknown; uri?: unknown } };
  if (typeof m.method !== 'string') return { method: null, name: null };
  if (m.id === undefined) return { method: m.method, name: null };
  let name: unknown = null;
  if (m.method === 'tools/call' || m.method === 'prompts/get') name = m.params?.name;
  else if (m.method === 'resources/read') name = m.params?.uri;
  return { method: m.method, name: typeof name === 'string' ? name : null };
}

/**
 * Why the headers contradict the body, or null when they agree. Absent
 * headers are not a mismatch: clients of revisions before 2026-07-28 do not
 * send them. A batch (which the revisions defining the headers do not have)
 * that carries them is refused: an intermediary could not have routed it
 * right. `Mcp-Name` on a method that addresses no name is ignored.
 */
export function headerMismatch(headers: Record<string, string | string[] | undefined>, body: unknown): string | null {
  const method = single(headers[MCP_METHOD_HEADER]);
  const nameHeader = single(headers[MCP_NAME_HEADER]);
  if (method === undefined && nameHeader === undefined) return null;
  if (Array.isArray(body)) return 'Mcp-Method / Mcp-Name cannot describe a JSON-RPC batch';
  const expected = mirroredValues(body);
  if (expected.method === null) return null;
  if (method !== undefined && method.replace(OWS, '') !== expected.method) return `Mcp-Method "${method.replace(OWS, '')}" does not match the body's method "${expected.method}"`;
  if (nameHeader === undefined || expected.name === null) return null;
  const name = decodeHeaderValue(nameHeader);
  if (name === null) return 'Mcp-Name is not a valid =?base64?…?= value (canonical, padded Base64 of UTF-8)';
  if (name !== expected.name) return `Mcp-Name does not match the name in the body`;
  return null;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
