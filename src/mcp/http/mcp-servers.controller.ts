import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, CurrentRequestMeta, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { ApiManagementAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { UpstreamListResponseDto, UpstreamResponseDto } from './mcp-response.dto';
import { UpstreamRegistryService } from '../application/upstream-registry.service';
import { RegisterUpstreamDto, toUpstreamResponse, UpdateUpstreamDto } from './mcp.dto';

/** M2: tenant admins register upstream MCP servers (Streamable HTTP only; stdio never over REST). */
@ApiTags('mcp-servers')
@ApiManagementAuth()
@Controller('api/v1/mcp/servers')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin'])
export class McpServersController {
  constructor(private readonly registry: UpstreamRegistryService) {}

  @Post()
  @ApiOperation({ summary: 'Register an upstream MCP server (its tools are listed at once)' })
  @ApiCreatedResponse({ type: UpstreamResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'duplicate_name', 'upstream_error', 'upstream_timeout')
  async register(@CurrentPrincipal() p: Principal, @Body() dto: RegisterUpstreamDto, @CurrentRequestMeta() meta: RequestMeta) {
    const u = await this.registry.register(p, { name: dto.name, url: dto.url, headers: dto.headers, timeoutMs: dto.timeout_ms }, meta);
    return toUpstreamResponse(u);
  }

  @Get()
  @ApiOperation({ summary: 'List upstreams' })
  @ApiOkResponse({ type: UpstreamListResponseDto })
  async list(@CurrentPrincipal() p: Principal) {
    return { data: (await this.registry.list(p)).map(toUpstreamResponse) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get an upstream' })
  @ApiOkResponse({ type: UpstreamResponseDto })
  @ApiProblems('not_found')
  async get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return toUpstreamResponse(await this.registry.get(p, id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change an upstream (URL, headers, timeout, name)' })
  @ApiOkResponse({ type: UpstreamResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'not_found', 'duplicate_name', 'invalid_state', 'upstream_error', 'upstream_timeout')
  async update(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Body() dto: UpdateUpstreamDto, @CurrentRequestMeta() meta: RequestMeta) {
    const u = await this.registry.update(p, id, { name: dto.name, url: dto.url, headers: dto.headers, timeoutMs: dto.timeout_ms }, meta);
    return toUpstreamResponse(u);
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Remove an upstream' })
  @ApiNoContentResponse({ description: 'Removed.' })
  @ApiProblems('not_found')
  @HttpCode(204)
  async remove(@CurrentPrincipal() p: Principal, @Param('id') id: string, @CurrentRequestMeta() meta: RequestMeta) {
    await this.registry.remove(p, id, meta);
  }

  @Post(':id/refresh')
  @ApiOperation({ summary: 'Re-list the upstream\'s tools' })
  @ApiOkResponse({ type: UpstreamResponseDto })
  @ApiProblems('not_found', 'invalid_state', 'upstream_error', 'upstream_timeout')
  @HttpCode(200)
  async refresh(@CurrentPrincipal() p: Principal, @Param('id') id: string, @CurrentRequestMeta() meta: RequestMeta) {
    return toUpstreamResponse(await this.registry.refresh(p, id, meta));
  }
}
