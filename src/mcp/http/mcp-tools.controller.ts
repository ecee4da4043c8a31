import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { APIKeyAuthGuard, CurrentAgent } from '../../api-keys/http/api-key-auth.guard';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { CurrentRequestMeta } from '../../auth/auth.decorators';
import { InFlightRequests } from '../../observability/http-instrumentation';
import { AgentThrottlerGuard } from '../../plans/http/agent-throttler.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { ApiAgentAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { ToolCallResponseDto, ToolListResponseDto, ToolResponseDto } from './mcp-response.dto';
import { BUDGET_META_KEY, McpGatewayService } from '../application/mcp-gateway.service';
import { CallCancellation } from '../domain/call-cancellation';
import { ToolCallCancelledError } from '../domain/mcp.errors';
import type { ExposedTool } from '../domain/upstream';
import { CallToolDto, toToolResponse } from './mcp.dto';
import { CLIENT_LEFT } from './mcp-server.factory';

/** M5: the REST mirror of /mcp for agents that do not speak MCP; same decisions. */
@ApiTags('mcp-tools')
@ApiAgentAuth()
@Controller('api/v1/mcp/tools')
@UseGuards(APIKeyAuthGuard, AgentThrottlerGuard)
export class McpToolsController {
  /**
   * The JSON of a visible-tool list, by list: listTools() returns the same
   * frozen array until the catalog or the key's scope changes, so its ~8 KB
   * body is serialized once instead of on every request (10 % of this route's
   * CPU, bench/README.md S1).
   */
  private readonly listBodies = new WeakMap<readonly ExposedTool[], string>();

  constructor(
    private readonly gateway: McpGatewayService,
    private readonly inFlight: InFlightRequests,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Tools the key may use (others are hidden)' })
  @ApiOkResponse({ type: ToolListResponseDto })
  async list(@CurrentAgent() agent: AgentPrincipal, @Res({ passthrough: true }) reply: FastifyReply) {
    const tools = await this.gateway.listTools(agent);
    let body = this.listBodies.get(tools);
    if (body === undefined) {
      body = JSON.stringify({ data: tools.map(toToolResponse) });
      this.listBodies.set(tools, body);
    }
    // A string with a JSON content type is sent as it is (Fastify does not serialize it again).
    void reply.type('application/json; charset=utf-8');
    return body;
  }

  @Get(':name')
  @ApiOperation({ summary: 'One tool, if the key may use it' })
  @ApiParam({ name: 'name', example: 'github__create_issue' })
  @ApiOkResponse({ type: ToolResponseDto })
  @ApiProblems('forbidden_resource', 'not_found')
  async get(@CurrentAgent() agent: AgentPrincipal, @Param('name') name: string, @CurrentRequestMeta() meta: RequestMeta) {
    return toToolResponse((await this.gateway.authorize(agent, name, meta)).tool);
  }

  @Post(':name/call')
  @ApiOperation({ summary: 'Call a tool (scope → quota and credits → upstream → metering)' })
  @ApiParam({ name: 'name', example: 'github__create_issue' })
  @ApiOkResponse({ type: ToolCallResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'forbidden_resource', 'not_found', 'quota_exceeded', 'insufficient_credits', 'upstream_error', 'upstream_timeout')
  @HttpCode(200)
  async call(
    @CurrentAgent() agent: AgentPrincipal,
    @Param('name') name: string,
    @Body() dto: CallToolDto,
    @CurrentRequestMeta() meta: RequestMeta,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // A client that leaves before the answer cancels the call, upstream included (as on /mcp).
    const cancellation = new CallCancellation();
    const left = () => {
      // While draining, a cut connection is the shutdown deadline's: the call fails with its upstream session, refunded.
      if (!reply.raw.writableFinished && !this.inFlight.draining) cancellation.cancel(CLIENT_LEFT);
    };
    reply.raw.once('close', left);
    if (reply.raw.destroyed) left(); // gone already (during the guards): the call is not even admitted
    try {
      // Counted until settled: a call cut by its client still releases or meters what it admitted.
      const { result, budget } = await this.inFlight.track(() => this.gateway.callTool(agent, name, dto.arguments ?? {}, meta, { cancellation }));
      const resultMeta = (result._meta as Record<string, unknown> | undefined) ?? {};
      return { ...result, _meta: { ...resultMeta, [BUDGET_META_KEY]: budget } };
    } catch (err) {
      // Nobody to answer: the request was logged (and counted) as aborted when its client left.
      if (err instanceof ToolCallCancelledError) return undefined;
      throw err;
    } finally {
      reply.raw.off('close', left);
    }
  }
}
