import { Injectable } from '@nestjs/common';
import { Server, ServerOptions } from '@modelcontextprotocol/sdk/server/index.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import {
  CallToolRequest,
  CallToolRequestSchema,
  CancelledNotificationSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  RequestSchema,
  ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import type { AgentPrincipal } from '../../auth/agent-principal';
import type { RequestMeta } from '../../shared/domain/actor';
import { BUDGET_META_KEY, McpGatewayService } from '../application/mcp-gateway.service';
import { InsufficientCreditsError, QuotaExceededError } from '../../plans/domain/billing.errors';
import {
  ForbiddenToolError,
  ToolCallCancelledError,
  UnknownToolError,
  UpstreamFailureError,
  UpstreamProtocolError,
  UpstreamTimeoutError,
} from '../domain/mcp.errors';
import { CallCancellation } from '../domain/call-cancellation';
import { clipText } from '../../shared/domain/text';
import type { ExposedTool } from '../domain/upstream';
import type { ToolCallOptions } from '../domain/upstream.repository';
import { InFlightRequests } from '../../observability/http-instrumentation';
import { DATABASE_RETRY_AFTER_S, isDatabaseUnavailable } from '../../shared/http/database-errors';
import { CallCancellations } from './call-cancellations';

/** tools/call with any params object: the strict check is left to Server (see create()). */
const LenientCallToolRequestSchema = CallToolRequestSchema.extend({ params: RequestSchema.shape.params });

/** JSON-RPC error code Tollgate uses for a scope refusal (implementation-defined server range). */
export const FORBIDDEN_RPC_CODE = -32003;
/** JSON-RPC error code for "Tollgate cannot serve this now" (its database is unavailable); data.code says service_unavailable. */
export const UNAVAILABLE_RPC_CODE = -32004;
/**
 * JSON-RPC error code answering a tools/call that its client cancelled with
 * `notifications/cancelled` on another request (the convention of LSP's
 * RequestCancelled); data.code says request_cancelled. The client has
 * forgotten the request by then; the answer only closes its HTTP request.
 */
export const CANCELLED_RPC_CODE = -32800;
/** The reason given upstream for a call whose client left before its answer. */
export const CLIENT_LEFT = 'the client closed its connection';
/** `_meta` key under which Tollgate explains its own refusals and failures. */
export const META_KEY = 'io.tollgate/error';

const SERVER_INFO = { name: 'tollgate', version: '0.1.0' };

/**
 * One validator for every per-request Server. Without it the SDK builds a new
 * AjvJsonSchemaValidator (a fresh `new Ajv()` with its vocabularies and
 * meta-schemas) in each Server's constructor: about 11 % of Tollgate's CPU per
 * tools/call in the profile of bench/README.md. The validator holds no
 * per-request state (the Server uses it only to check elicitation answers,
 * which Tollgate never requests), so sharing it is safe.
 */
const SERVER_OPTIONS: ServerOptions = {
  capabilities: { tools: { listChanged: false } },
  instructions: 'Tollgate: tools from the upstream MCP servers your API key allows, named <server>__<tool>.',
  jsonSchemaValidator: new AjvJsonSchemaValidator(),
};

/**
 * SEP-2549 caching hints (MCP 2026-07-28) on every tools/list result: the list
 * depends on the caller's key (its scope), so it is `private` (never served
 * to another authorization context), and may be reused for a minute. Clients
 * of earlier protocol versions ignore the fields. A scope narrowed within that
 * minute still takes effect at once where it matters: every tools/call is
 * authorized again. The other way round, a client that honours the hint may
 * see a tool newly allowed or added up to a minute late (Tollgate sends no
 * list_changed notifications).
 */
export const TOOLS_LIST_CACHE_HINTS = { ttlMs: 60_000, cacheScope: 'private' } as const;

type McpTool = ReturnType<typeof toMcpTool>;
/** The MCP shape of a listTools() result, kept as long as that (shared, frozen) result is. */
const mcpShaped = new WeakMap<readonly ExposedTool[], McpTool[]>();

function mcpToolsOf(tools: readonly ExposedTool[]): McpTool[] {
  let shaped = mcpShaped.get(tools);
  if (!shaped) {
    shaped = tools.map(toMcpTool);
    mcpShaped.set(tools, shaped);
  }
  return shaped;
}

/**
 * Builds the MCP server that answers one HTTP request for one caller
 * (stateless: the caller's tools come from its scope on every request, so any
 * replica can serve any request).
 */
@Injectable()
export class McpServerFactory {
  constructor(
    private readonly gateway: McpGatewayService,
    private readonly inFlight: InFlightRequests,
    private readonly cancellations: CallCancellations,
  ) {}

  /** `relayProgress`: the answer is an SSE stream, which can carry the progress of a tools/call (McpController). */
  create(caller: AgentPrincipal, request: RequestMeta, relayProgress = false): Server {
    const server = new Server(SERVER_INFO, SERVER_OPTIONS);
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: mcpToolsOf(await this.gateway.listTools(caller).catch(rethrowUnavailable)),
      ...TOOLS_LIST_CACHE_HINTS,
    }));
    // Registered with a lenient schema: the SDK's Protocol layer would turn a
    // malformed tools/call (e.g. no `name`) into -32603 Internal error; this way
    // Server's own strict check runs first and answers -32602 Invalid params.
    server.setRequestHandler(LenientCallToolRequestSchema, async (raw, extra) => {
      const req = raw as CallToolRequest;
      const args = (req.params.arguments ?? {}) as Record<string, unknown>;
      // The call stops, upstream included, when its client cancels it (from any request: see
      // CallCancellations) or leaves before the answer: McpController then closes the transport,
      // which closes this server (onclose; the SDK sends nothing more, as for a cancelled request).
      // Not through extra.signal: an AbortSignal listener costs ~5 µs (CallCancellation).
      // While draining for shutdown a closed connection is the deadline's cut, not the client: the
      // call is left to fail with its upstream session (graceful-shutdown), and is refunded.
      const cancellation = new CallCancellation();
      const closed = server.onclose;
      server.onclose = () => {
        closed?.();
        if (!this.inFlight.draining) cancellation.cancel(CLIENT_LEFT);
      };
      // Closed already (the client left between McpController's check and here): the SDK still runs
      // the handler, with no transport to answer on.
      if (server.transport === undefined && !this.inFlight.draining) cancellation.cancel(CLIENT_LEFT);
      const unregister = this.cancellations.register(CallCancellations.ownerOf(caller.tenantId, caller.keyId, request.ip), extra.requestId, cancellation);
      try {
        // Progress is sent with the request id only, not through extra.sendNotification: for a request naming
        // a related task that would queue it for tasks/result, and Tollgate has no task store.
        const send = relayProgress ? (n: ServerNotification) => server.notification(n, { relatedRequestId: extra.requestId }) : undefined;
        const options = passedOn(req.params._meta, send) ?? {};
        options.cancellation = cancellation;
        // Counted until settled, not until the answer is written: a call whose client left still
        // releases or meters what it admitted (and graceful shutdown waits for that).
        const { result, budget } = await this.inFlight.track(() => this.gateway.callTool(caller, req.params.name, args, request, options));
        const meta = (result._meta as Record<string, unknown> | undefined) ?? {};
        return { ...result, _meta: { ...meta, [BUDGET_META_KEY]: budget } } as never;
      } catch (err) {
        const mapped = toRpcError(err, req.params.name);
        if (mapped instanceof Error) throw mapped;
        return mapped as never;
      } finally {
        unregister();
      }
    });
    // Replaces the SDK's handler, which only sees requests of this (one-request) transport.
    server.setNotificationHandler(CancelledNotificationSchema, (n) => {
      const { requestId, reason } = n.params;
      if (requestId === undefined) return;
      this.cancellations.cancel(CallCancellations.ownerOf(caller.tenantId, caller.keyId, request.ip), requestId, typeof reason === 'string' ? clipText(reason, 200) : undefined);
    });
    return server;
  }
}

/**
 * M7: what the caller's tools/call `_meta` asks for, for the upstream call.
 * Its keys go upstream unchanged, except the progressToken (the upstream gets
 * Tollgate's own, and each progress it reports comes back to the caller under
 * the caller's token through `send`, when the answer can carry it) and keys
 * the MCP specification reserves for itself (see isReservedMetaKey).
 */
export function passedOn(meta: Record<string, unknown> | undefined, send?: (n: ServerNotification) => Promise<void>): ToolCallOptions | undefined {
  if (meta === undefined) return undefined;
  let rest: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'progressToken' || isReservedMetaKey(key)) continue;
    (rest ??= {})[key] = value;
  }
  const token = meta.progressToken;
  if (!rest && !(send && isProgressToken(token))) return undefined;
  const options: ToolCallOptions = rest ? { meta: rest } : {};
  if (send && isProgressToken(token)) {
    options.onProgress = (p) => {
      // A caller gone or an answer already sent: the progress has nowhere to go, the call goes on.
      send({ method: 'notifications/progress', params: { progressToken: token, ...p } }).catch(() => undefined);
    };
  }
  return options;
}

/** What the SDK accepts as a progress token: a string or an integer. */
export function isProgressToken(token: unknown): token is string | number {
  return typeof token === 'string' || Number.isSafeInteger(token);
}

/**
 * `_meta` keys the MCP specification reserves: a prefix (before `/`) with a
 * label `modelcontextprotocol` or `mcp` (`io.modelcontextprotocol/related-task`,
 * `modelcontextprotocol.io/…`, `dev.mcp/…`). They speak of the caller's
 * exchange with Tollgate (a task, say), which the upstream, on a session
 * shared by every caller, knows nothing of: an SDK upstream without a task
 * store fails every notification of a call that names a related task.
 */
export function isReservedMetaKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  return key
    .slice(0, slash)
    .split('.')
    .some((label) => label === 'modelcontextprotocol' || label === 'mcp');
}

/** A tool's `_meta` without the keys the MCP specification reserves (undefined when nothing is left). */
export function toolMeta(t: ExposedTool): Record<string, unknown> | undefined {
  let meta: Record<string, unknown> | undefined;
  if (t._meta) {
    for (const [key, value] of Object.entries(t._meta)) if (!isReservedMetaKey(key)) (meta ??= {})[key] = value;
  }
  return meta;
}

/**
 * A tool as tools/list gives it: the upstream's definition (icons, execution
 * and _meta included) under Tollgate's name, without the `_meta` keys the MCP
 * specification reserves (they speak of the upstream's exchange, not of
 * Tollgate's). Built once per listed catalog and scope (mcpToolsOf).
 */
export function toMcpTool(t: ExposedTool) {
  const meta = toolMeta(t);
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    ...(t.icons ? { icons: t.icons as { src: string }[] } : {}),
    description: t.description,
    inputSchema: t.inputSchema as { type: 'object' },
    ...(t.outputSchema ? { outputSchema: t.outputSchema as { type: 'object' } } : {}),
    ...(t.annotations ? { annotations: t.annotations } : {}),
    ...(t.execution ? { execution: t.execution } : {}),
    ...(meta ? { _meta: meta } : {}),
  };
}

/**
 * Refusals an agent (a model) can read: scope → JSON-RPC error with
 * data.code forbidden_resource; unknown tool → invalid params; the
 * upstream's own JSON-RPC errors pass through unchanged. Upstream outages are
 * tool-execution failures, so they come back as an `isError` result.
 */
function toRpcError(err: unknown, tool: string): unknown {
  if (err instanceof ForbiddenToolError) {
    return new McpError(FORBIDDEN_RPC_CODE, err.message, { code: 'forbidden_resource', tool, matched_rule: err.matchedRule });
  }
  if (err instanceof UnknownToolError) {
    return new McpError(ErrorCode.InvalidParams, err.message, { code: 'not_found', tool });
  }
  if (err instanceof ToolCallCancelledError) {
    return new McpError(CANCELLED_RPC_CODE, 'Request cancelled', { code: 'request_cancelled', tool });
  }
  if (err instanceof UpstreamProtocolError) {
    return new McpError(err.rpcCode, err.rpcMessage, err.rpcData);
  }
  if (err instanceof QuotaExceededError || err instanceof InsufficientCreditsError) {
    // Told in words to the model that reads the result, with the numbers in _meta for the host.
    return { isError: true, content: [{ type: 'text', text: `${err.code}: ${err.message}` }], _meta: { [META_KEY]: { code: err.code, ...(err.details ?? {}) } } };
  }
  if (err instanceof UpstreamFailureError || err instanceof UpstreamTimeoutError) {
    return { isError: true, content: [{ type: 'text', text: `${err.code}: ${err.message}` }], _meta: { [META_KEY]: { code: err.code, ...(err.details ?? {}) } } };
  }
  if (isDatabaseUnavailable(err)) return unavailable();
  return err;
}

/** PostgreSQL unreachable: a JSON-RPC error the agent can act on (retry), not -32603 with a driver message. */
function unavailable(): McpError {
  return new McpError(UNAVAILABLE_RPC_CODE, 'Tollgate cannot serve this request right now; retry shortly.', {
    code: 'service_unavailable',
    retry_after: DATABASE_RETRY_AFTER_S,
  });
}

function rethrowUnavailable(err: unknown): never {
  throw isDatabaseUnavailable(err) ? unavailable() : err;
}
