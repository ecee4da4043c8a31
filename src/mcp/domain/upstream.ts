import { ValidationFailedError } from '../../shared/domain/domain-error';

/** Upstream server names: they prefix tool names, so they stay short and simple. */
export const UPSTREAM_NAME = /^[a-z0-9-]{1,32}$/;
/** What model providers' function-calling APIs accept as a tool name. */
export const EXPOSED_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const TOOL_SEPARATOR = '__';

/** A tool as an upstream described it; schemas are kept exactly as received. */
export interface UpstreamTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
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
    });
  }
  return { tools, skipped };
}

/** Header names an admin may set on upstream requests (hop-by-hop and framing headers are refused). */
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'connection', 'transfer-encoding', 'mcp-session-id', 'mcp-protocol-version']);
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;

export function validateUpstreamHeaders(headers: Record<string, unknown>): Record<string, string> {
  const errors: { field: string; message: string }[] = [];
  const out: Record<string, string> = {};
  const entries = Object.entries(headers);
  if (entries.length > 20) errors.push({ field: 'headers', message: 'at most 20 headers' });
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name) || FORBIDDEN_HEADERS.has(name.toLowerCase())) {
      errors.push({ field: `headers.${name}`, message: 'is not an allowed header name' });
    } else if (typeof value !== 'string' || value.length === 0 || value.length > 4096 || /[\r\n]/.test(value)) {
      errors.push({ field: `headers.${name}`, message: 'must be a non-empty single-line string of at most 4096 characters' });
    } else {
      out[name] = value;
    }
  }
  if (errors.length) throw new ValidationFailedError(errors);
  return out;
}
