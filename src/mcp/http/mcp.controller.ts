import { Controller, Delete, Get, Post, Req, Res, UseGuards } from '@nestjs/common';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ApiBody, ApiHeader, ApiMethodNotAllowedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APIKeyAuthGuard, CurrentAgent } from '../../api-keys/http/api-key-auth.guard';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { requestMetaOf } from '../../auth/auth.decorators';
import { AppConfig } from '../../config/app-config';
import { AgentThrottlerGuard } from '../../plans/http/agent-throttler.guard';
import { InFlightRequests } from '../../observability/http-instrumentation';
import { DomainError } from '../../shared/domain/domain-error';
import { ApiAgentAuth, ApiProblems } from '../../shared/http/api-problems.decorator';
import { JsonRpcMessageDto } from './mcp-response.dto';
import { isProgressToken, McpServerFactory } from './mcp-server.factory';
import { HEADER_MISMATCH_RPC_CODE, headerMismatch } from '../domain/mirrored-headers';

const MCP_PATHS = ['mcp', 'api/v1/mcp'];

/**
 * M1: the MCP Streamable HTTP endpoint, served by the official SDK transport
 * in stateless mode with JSON responses (an SSE stream for a tools/call that
 * asks for progress, M7). The SDK negotiates the protocol
 * version, checks Accept and MCP-Protocol-Version, and speaks JSON-RPC; this
 * controller authenticates (every request), checks Origin and hands over.
 */
@ApiTags('mcp')
@ApiAgentAuth()
@ApiProblems('forbidden')
@Controller()
@UseGuards(APIKeyAuthGuard, AgentThrottlerGuard)
export class McpController {
  private readonly allowedOrigins: Set<string>;

  constructor(
    private readonly servers: McpServerFactory,
    private readonly config: AppConfig,
    private readonly inFlight: InFlightRequests,
  ) {
    this.allowedOrigins = new Set([new URL(config.publicUrl).origin]);
  }

  @Post(MCP_PATHS)
  @ApiOperation({
    summary: 'MCP Streamable HTTP endpoint (stateless, JSON responses; SSE for a tools/call with a progressToken)',
    description:
      'JSON-RPC 2.0 per the MCP specification: initialize, tools/list (filtered by the key scope), tools/call (scope, quota, credits, metering). ' +
      'A tools/call whose params._meta carries a progressToken is answered as an SSE stream: the upstream\'s progress notifications, under that token, then the result; the rest of its _meta goes to the upstream unchanged. ' +
      'Tool refusals (forbidden_resource, quota_exceeded, …) come back as JSON-RPC errors whose `data.code` is the problem code.',
  })
  @ApiHeader({ name: 'Accept', required: true, example: 'application/json, text/event-stream' })
  @ApiHeader({ name: 'MCP-Protocol-Version', required: false, example: '2025-06-18' })
  @ApiHeader({ name: 'Mcp-Method', required: false, example: 'tools/call', description: 'SEP-2243: when sent, must equal the body\'s method (else 400, JSON-RPC -32020 HeaderMismatch).' })
  @ApiHeader({ name: 'Mcp-Name', required: false, example: 'github__create_issue', description: 'SEP-2243: when sent, must equal params.name / params.uri (plain or =?base64?…?=).' })
  @ApiBody({ type: JsonRpcMessageDto })
  @ApiOkResponse({ type: JsonRpcMessageDto, description: 'The JSON-RPC response (202 with no body for notifications).' })
  async post(@Req() req: FastifyRequest, @Res() reply: FastifyReply, @CurrentAgent() agent: AgentPrincipal): Promise<void> {
    this.checkOrigin(req);
    // SEP-2243: intermediaries may have routed on Mcp-Method / Mcp-Name; a body that says otherwise is refused.
    const mismatch = headerMismatch(req.headers, req.body);
    if (mismatch) {
      const id = (req.body as { id?: unknown }).id;
      reply
        .status(400)
        .header('content-type', 'application/json')
        .send({ jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: { code: HEADER_MISMATCH_RPC_CODE, message: `Header mismatch: ${mismatch}` } });
      return;
    }
    // JSON answers, except for a tools/call that asks for progress: its progress notifications need an SSE
    // stream. Not while draining: the SDK's SSE answer sets `Connection: keep-alive` over our `close`.
    const relayProgress = !this.inFlight.draining && asksForProgress(req.body);
    const server = this.servers.create(agent, requestMetaOf(req), relayProgress);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !relayProgress });
    await server.connect(transport);
    reply.hijack();
    // The SDK writes to the raw response: carry over what guards set (X-RateLimit-*, X-Request-Id).
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) reply.raw.setHeader(name, value as string);
    }
    reply.raw.setHeader('X-Request-Id', String(req.id));
    // A client gone before its answer: closing the transport aborts the handlers
    // still running (and closes the server, which Protocol wires to onclose). After
    // a complete answer nothing is pending, and close() would only build a
    // "Connection closed" McpError (stack trace included) per request, ~2 % of a
    // tools/call's CPU (bench/README.md): the pair is left to the GC.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) void transport.close();
    });
    // A tools/call whose client is gone already (it left during the guards): nothing to serve, and
    // nothing is admitted or charged. Other messages still go through: a client may well send a
    // notification (notifications/cancelled, say) and hang up without reading the 202.
    if (reply.raw.destroyed && (req.body as { method?: unknown } | null)?.method === 'tools/call') return;
    // The tool call itself is counted by the server's handler until it settles (McpServerFactory).
    await transport.handleRequest(req.raw, reply.raw, req.body);
  }

  /** Stateless server: no standalone SSE stream and no sessions to delete. */
  @Get(MCP_PATHS)
  @ApiOperation({ summary: 'Not supported (stateless server: no standalone SSE stream)' })
  @ApiMethodNotAllowedResponse({ type: JsonRpcMessageDto, description: 'Always; use POST.' })
  get(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    this.checkOrigin(req);
    methodNotAllowed(reply);
  }

  @Delete(MCP_PATHS)
  @ApiOperation({ summary: 'Not supported (stateless server: no session to delete)' })
  @ApiMethodNotAllowedResponse({ type: JsonRpcMessageDto, description: 'Always; use POST.' })
  delete(@Req() req: FastifyRequest, @Res() reply: FastifyReply): void {
    this.checkOrigin(req);
    methodNotAllowed(reply);
  }

  /** DNS-rebinding protection: a browser page from another origin may not drive the endpoint. */
  private checkOrigin(req: FastifyRequest): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (this.allowedOrigins.has(origin)) return;
    if (!this.config.production && /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(origin)) return;
    throw new DomainError('forbidden', `Origin ${origin} is not allowed to use this MCP endpoint.`);
  }
}

/** A single tools/call whose `_meta` carries a progressToken (M7: its progress is relayed as it happens). */
function asksForProgress(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const { method, params } = body as { method?: unknown; params?: { _meta?: { progressToken?: unknown } } };
  return method === 'tools/call' && isProgressToken(params?._meta?.progressToken);
}

function methodNotAllowed(reply: FastifyReply): void {
  reply
    .status(405)
    .header('Allow', 'POST')
    .header('content-type', 'application/json')
    .send({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this server is stateless; use POST.' }, id: null });
}
