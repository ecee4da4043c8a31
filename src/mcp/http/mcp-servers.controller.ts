import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from '@nestjs/common';
import { CurrentPrincipal, CurrentRequestMeta, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { UpstreamRegistryService } from '../application/upstream-registry.service';
import { RegisterUpstreamDto, toUpstreamResponse, UpdateUpstreamDto } from './mcp.dto';

/** M2: tenant admins register upstream MCP servers (Streamable HTTP only; stdio never over REST). */
@Controller('api/v1/mcp/servers')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin'])
export class McpServersController {
  constructor(private readonly registry: UpstreamRegistryService) {}

  @Post()
  async register(@CurrentPrincipal() p: Principal, @Body() dto: RegisterUpstreamDto, @CurrentRequestMeta() meta: RequestMeta) {
    const u = await this.registry.register(p, { name: dto.name, url: dto.url, headers: dto.headers, timeoutMs: dto.timeout_ms }, meta);
    return toUpstreamResponse(u);
  }

  @Get()
  async list(@CurrentPrincipal() p: Principal) {
    return { data: (await this.registry.list(p)).map(toUpstreamResponse) };
  }

  @Get(':id')
  async get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return toUpstreamResponse(await this.registry.get(p, id));
  }

  @Patch(':id')
  async update(@CurrentPrincipal() p: Principal, @Param('id') id: string, @Body() dto: UpdateUpstreamDto, @CurrentRequestMeta() meta: RequestMeta) {
    const u = await this.registry.update(p, id, { name: dto.name, url: dto.url, headers: dto.headers, timeoutMs: dto.timeout_ms }, meta);
    return toUpstreamResponse(u);
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@CurrentPrincipal() p: Principal, @Param('id') id: string, @CurrentRequestMeta() meta: RequestMeta) {
    await this.registry.remove(p, id, meta);
  }

  @Post(':id/refresh')
  @HttpCode(200)
  async refresh(@CurrentPrincipal() p: Principal, @Param('id') id: string, @CurrentRequestMeta() meta: RequestMeta) {
    return toUpstreamResponse(await this.registry.refresh(p, id, meta));
  }
}
