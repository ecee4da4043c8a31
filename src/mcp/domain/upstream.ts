import { DomainError, ValidationFailedError } from '../../shared/domain/domain-error';

/** Upstream server names: they prefix tool names, so they stay short and simple. */
export const UPSTREAM_NAME = /^[a-z0-9-]{1,32}$/;
/** What model providers' function-calling APIs accept as a tool name. */
export const EXPOSED_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const TOOL_SEPARATOR = '__';

/** A tool as an upstream described it; schemas, icons, execution and _meta are kept exactly as received. */
export interface UpstreamTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  icons?: Record<string, unknown>[];
  /** e.g. `{ taskSupport }`. */
  execution?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

/** An operator-declared stdio server (UPSTREAMS_FILE only; never registrable over REST). */
export interface StdioCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** A registered upstream MCP server (Streamable HTTP), or an operator-declared one (HTTP or stdio). */
export interface Upstream {
  id: string;
  tenantId: string;
  name: string;
  /** Streamable HTTP endpoint; empty for stdio upstreams. */
  url: string;
  /** Set for operator-declared stdio upstreams. */
  stdio?: StdioCommand;
  /** `config`: declared by the operator in UPSTREAMS_FILE (read-only over REST). */
  source?: 'registry' | 'config';
  /** Decrypted request headers (e.g. Authorization); never returned by the API. */
  headers: Record<string, string>;
  timeoutMs: number;
  tools: UpstreamTool[];
  toolsRefreshedAt: Date | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** A tool as Tollgate exposes it: `<server>__<tool>`, always with a description. */
export interface ExposedTool {
  name: string;
  upstreamId: string;
  upstreamName: string;
  upstreamToolName: string;
  title?: string;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  icons?: Record<string, unknown>[];
  execution?: Record<string, unknown>;
  /** As the upstream gave it; keys the MCP specification reserves are left out when it is listed (toMcpTool). */
  _meta?: Record<string, unknown>;
}

export function exposedToolName(server: string, tool: string): string {
  return `${server}${TOOL_SEPARATOR}${tool}`;
}

/** Splits an exposed name at the first separator (server names cannot contain `__`). */
export function parseExposedToolName(name: string): { server: string; tool: string } | null {
  const at = name.indexOf(TOOL_SEPARATOR);
  if (at <= 0) return null;
  const server = name.slice(0, at);
  const tool = name.slice(at + TOOL_SEPARATOR.length);
  return UPSTREAM_NAME.test(server) && tool.length > 0 ? { server, tool } : null;
}

/**
 * The upstream's tools as exposed names. Tools whose exposed name would break
 * the provider pattern are left out (and reported), never renamed silently.
 */
export function exposeTools(upstream: Pick<Upstream, 'id' | 'name' | 'tools'>): { tools: ExposedTool[]; skipped: string[] } {
  const tools: ExposedTool[] = [];
  const skipped: string[] = [];
  for (const t of upstream.tools) {
    const name = exposedToolName(upstream.name, t.name);
    if (!EXPOSED_TOOL_NAME.test(name)) {
      skipped.push(t.name);
      continue;
    }
    tools.push({
      name,
      upstreamId: upstream.id,
      upstreamName: upstream.name,
      upstreamToolName: t.name,
      ...(t.title ? { title: t.title } : {}),
      description: t.description?.trim() ? t.description : `Tool "${t.name}" of the upstream MCP server "${upstream.name}".`,
      inputSchema: t.inputSchema,
      ...(t.outputSchema ? { outputSchema: t.outputSchema } : {}),
      ...(t.annotations ? { annotations: t.annotations } : {}),
      ...(t.icons ? { icons: t.icons } : {}),
      ...(t.execution ? { execution: t.execution } : {}),
      ...(t._meta ? { _meta: t._meta } : {}),
    });
  }
  return { tools, skipped };
}

/** Header names an admin may set on upstream requests (hop-by-hop and framing headers are refused). */
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'connection', 'transfer-encoding', 'mcp-session-id', 'mcp-protocol-version']);
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
/**
 * An RFC 9110 field-value as Node sends it: field-vchars (visible ASCII, or
 * obs-text U+0080–U+00FF) with spaces and tabs only between them. Both of
 * Node's HTTP clients send a character of U+0080–U+00FF as its one Latin-1
 * byte and refuse the rest: above U+00FF fetch (undici) throws "Cannot convert
 * argument to a ByteString" and node:http ERR_INVALID_CHAR; NUL, CR and LF fail
 * undici's Headers.append (whose message echoes the value), other controls
 * and DEL fail undici's request check and node:http. Leading or trailing
 * whitespace is trimmed by fetch but sent by node:http (the tools/call path):
 * not a field-value either, so refused rather than sent two ways.
 */
const FIELD_VALUE = /^[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?$/;
const MAX_HEADER_VALUE = 4096;

/** Parses an admin's upstream headers; a refusal names the header (`headers.<name>`), never its value (often a credential). */
export function validateUpstreamHeaders(headers: Record<string, unknown>): Record<string, string> {
  const errors: { field: string; message: string }[] = [];
  const out: Record<string, string> = {};
  const entries = Object.entries(headers);
  if (entries.length > 20) errors.push({ field: 'headers', message: 'at most 20 headers' });
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name) || FORBIDDEN_HEADERS.has(name.toLowerCase())) {
      errors.push({ field: `headers.${name}`, message: 'is not an allowed header name' });
    } else if (typeof value !== 'string' || value.length === 0 || value.length > MAX_HEADER_VALUE) {
      errors.push({ field: `headers.${name}`, message: `must be a non-empty string of at most ${MAX_HEADER_VALUE} characters` });
    } else if (!FIELD_VALUE.test(value)) {
      errors.push({
        field: `headers.${name}`,
        message: 'must be an HTTP field value: visible ASCII or U+0080–U+00FF characters, with spaces or tabs only between them (no control characters)',
      });
    } else {
      out[name] = value;
    }
  }
  if (errors.length) throw new ValidationFailedError(errors);
  return out;
}

export class DuplicateUpstreamNameError extends DomainError {
  constructor(name: string) {
    super('duplicate_name', `An upstream named "${name}" already exists.`, { name });
  }
}

/** Where and how an upstream is reached: what its listed tools were read from. */
export function sameEndpoint(a: Pick<Upstream, 'url' | 'headers'>, b: Pick<Upstream, 'url' | 'headers'>): boolean {
  if (a.url !== b.url) return false;
  const ka = Object.keys(a.headers);
  const kb = Object.keys(b.headers);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b.headers, k) && b.headers[k] === a.headers[k]);
}

/** Shortest header value, and shortest part of one (e.g. the token of `Bearer <token>`), hidden by redactHeaderValues. */
const MIN_REDACTED_VALUE = 4;
const MIN_REDACTED_PART = 8;
export const REDACTED = '[redacted]';

/**
 * `text` (an error message, possibly the upstream's own words) with every
 * occurrence of the upstream's header values, and of their longer
 * whitespace-separated parts, replaced by [redacted]: those values are
 * credentials, and an upstream that refuses one often quotes it back.
 */
export function redactHeaderValues(text: string, headers: Record<string, string>): string {
  const secrets = new Set<string>();
  for (const value of Object.values(headers)) {
    const trimmed = value.trim();
    if (trimmed.length >= MIN_REDACTED_VALUE) secrets.add(trimmed);
    for (const part of trimmed.split(/[\s,;]+/)) if (part.length >= MIN_REDACTED_PART) secrets.add(part);
  }
  if (secrets.size === 0) return text;
  // One pass, longest first: a value is hidden whole before any part of it, and nothing matches inside a [redacted] just written.
  const pattern = [...secrets]
    .sort((x, y) => y.length - x.length)
    .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  return text.replace(new RegExp(pattern, 'g'), REDACTED);
}
