import { Body, Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { APIKeyAuthGuard, CurrentAgent } from '../../api-keys/http/api-key-auth.guard';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { CurrentRequestMeta } from '../../auth/auth.decorators';
import { InFlightRequests } from '../../observability/http-instrumentation';
import { AgentThrottlerGuard } from '../../plans/http/agent-throttler.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { ApiAgentAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { ToolCallResponseDto, ToolListResponseDto, ToolResponseDto } from './mcp-response.dto';
import { BUDGET_META_KEY, McpGatewayService } from '../application/mcp-gateway.service';
import { CallToolDto, toToolResponse } from './mcp.dto';

/** M5: the REST mirror of /mcp for agents that do not speak MCP; same decisions. */
@ApiTags('mcp-tools')
@ApiAgentAuth()
@Controller('api/v1/mcp/tools')
@UseGuards(APIKeyAuthGuard, AgentThrottlerGuard)
export class McpToolsController {
  constructor(
    private readonly gateway: McpGatewayService,
    private readonly inFlight: InFlightRequests,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Tools the key may use (others are hidden)' })
  @ApiOkResponse({ type: ToolListResponseDto })
  async list(@CurrentAgent() agent: AgentPrincipal) {
    return { data: (await this.gateway.listTools(agent)).map(toToolResponse) };
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
  ) {
    // Counted until settled: a call cut by its client still releases or meters what it admitted.
    const { result, budget } = await this.inFlight.track(() => this.gateway.callTool(agent, name, dto.arguments ?? {}, meta));
    const resultMeta = (result._meta as Record<string, unknown> | undefined) ?? {};
    return { ...result, _meta: { ...resultMeta, [BUDGET_META_KEY]: budget } };
  }
}
