import { Body, Controller, Delete, Get, Header, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, CurrentRequestMeta, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { ApiManagementAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { Clock } from '../../shared/domain/clock';
import { APIKeysService } from '../application/api-keys.service';
import {
  APIKeyPageResponseDto,
  APIKeyResponseDto,
  CreateAPIKeyDto,
  CreatedAPIKeyResponseDto,
  RotatedAPIKeyResponseDto,
  ListAPIKeysQueryDto,
  RotateAPIKeyDto,
  toAPIKeyResponse,
  UpdateAPIKeyDto,
} from './api-key.dto';
import { KeyHygieneQueryDto, KeyHygieneResponseDto, toHygieneResponse } from './key-hygiene.dto';

/** K1, K3, K4: the key lifecycle over JWT-protected REST. */
@ApiTags('api-keys')
@ApiManagementAuth()
@Controller('api/v1/api-keys')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin', 'developer'])
export class APIKeysController {
  constructor(
    private readonly keys: APIKeysService,
    private readonly clock: Clock,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create an API key (the secret is returned once)' })
  @ApiCreatedResponse({ type: CreatedAPIKeyResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'scope_too_wide', 'key_limit_reached', 'duplicate_name')
  @Roles(['admin', 'developer', 'service'])
  @Header('Cache-Control', 'no-store')
  async create(@CurrentPrincipal() p: Principal, @Body() dto: CreateAPIKeyDto, @CurrentRequestMeta() meta: RequestMeta) {
    const { key, token } = await this.keys.create(
      p,
      {
        name: dto.name,
        permissionScope: dto.permission_scope,
        expiresAt: dto.expires_at ? new Date(dto.expires_at) : null,
        userId: dto.user_id,
        metadata: dto.metadata,
        monthlyCreditCap: dto.monthly_credit_cap ?? null,
      },
      meta,
    );
    return { ...toAPIKeyResponse(key, this.clock.now()), token };
  }

  @Get()
  @ApiOperation({ summary: 'List API keys (developers: their own)' })
  @ApiOkResponse({ type: APIKeyPageResponseDto })
  @ApiProblems('validation_failed')
  async list(@CurrentPrincipal() p: Principal, @Query() q: ListAPIKeysQueryDto) {
    const page = await this.keys.list(p, { limit: q.limit ?? 20, cursor: q.cursor, userId: q.user_id, status: q.status, name: q.name });
    const now = this.clock.now();
    return { data: page.data.map((k) => toAPIKeyResponse(k, now)), next_cursor: page.nextCursor };
  }

  @Get('hygiene')
  @ApiOperation({ summary: "Key hygiene report (K10): live keys that never expire, idle or never used, without a credit cap, or beyond the plan's maximum lifetime" })
  @ApiOkResponse({ type: KeyHygieneResponseDto })
  @ApiProblems('validation_failed')
  @Roles(['admin'])
  async hygiene(@CurrentPrincipal() p: Principal, @Query() q: KeyHygieneQueryDto): Promise<KeyHygieneResponseDto> {
    return toHygieneResponse(await this.keys.hygiene(p, q.idle_days ?? 30));
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get an API key' })
  @ApiOkResponse({ type: APIKeyResponseDto })
  @ApiProblems('not_found')
  async get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return toAPIKeyResponse(await this.keys.get(p, id), this.clock.now());
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Rename, enable/disable, re-scope or re-expire a key (takes effect at once)' })
  @ApiOkResponse({ type: APIKeyResponseDto })
  @ApiProblems(...BODY_PROBLEMS, 'not_found', 'scope_too_wide', 'duplicate_name', 'invalid_state')
  async update(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Body() dto: UpdateAPIKeyDto,
    @CurrentRequestMeta() meta: RequestMeta,
  ) {
    const key = await this.keys.update(
      p,
      id,
      {
        name: dto.name,
        enabled: dto.enabled,
        expiresAt: dto.expires_at === undefined ? undefined : dto.expires_at === null ? null : new Date(dto.expires_at),
        permissionScope: dto.permission_scope,
        metadata: dto.metadata,
        monthlyCreditCap: dto.monthly_credit_cap,
      },
      meta,
    );
    return toAPIKeyResponse(key, this.clock.now());
  }

  @Delete(':id')
  @ApiOperation({ summary: 'Revoke an API key (irreversible, immediate)' })
  @ApiNoContentResponse({ description: 'Revoked.' })
  @ApiProblems('not_found', 'invalid_state')
  @HttpCode(204)
  async revoke(@CurrentPrincipal() p: Principal, @Param('id') id: string, @CurrentRequestMeta() meta: RequestMeta) {
    await this.keys.revoke(p, id, meta);
  }

  @Post(':id/rotate')
  @ApiOperation({ summary: 'Rotate: a new secret; the previous key works for the grace period' })
  @ApiCreatedResponse({ type: RotatedAPIKeyResponseDto, description: 'The new key with its secret (shown once) and the previous key.' })
  @ApiProblems(...BODY_PROBLEMS, 'not_found', 'invalid_state')
  @Header('Cache-Control', 'no-store')
  async rotate(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Body() dto: RotateAPIKeyDto,
    @CurrentRequestMeta() meta: RequestMeta,
  ) {
    const { key, token, previous } = await this.keys.rotate(p, id, dto.grace_period_seconds ?? 0, meta);
    const now = this.clock.now();
    return { ...toAPIKeyResponse(key, now), token, previous_key: toAPIKeyResponse(previous, now) };
  }
}
