import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Length } from 'class-validator';
import { CurrentPrincipal, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import { UsageService } from '../application/usage.service';
import type { Granularity } from '../domain/usage';
import { ApiManagementAuth, ApiProblems } from '../../shared/http/api-problems.decorator';
import { KeyUsageResponseDto, UsageReportResponseDto } from './usage-response.dto';
import { IsIsoDateTime } from '../../shared/http/iso-date.validator';

export class UsageQueryDto {
  @ApiPropertyOptional({ format: 'date-time', description: 'Default: start of the month.' })
  @IsOptional()
  @IsIsoDateTime({ strictSeparator: false })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Default: now.' })
  @IsOptional()
  @IsIsoDateTime({ strictSeparator: false })
  to?: string;

  @ApiPropertyOptional({ enum: ['hour', 'day', 'month'], default: 'day' })
  @IsOptional()
  @IsIn(['hour', 'day', 'month'])
  granularity?: Granularity;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  key_id?: string;

  @ApiPropertyOptional({ example: 'github__create_issue' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  tool?: string;
}

/** U2: usage over REST (admins: the tenant; developers: their own keys). */
@ApiTags('usage')
@ApiManagementAuth()
@Controller('api/v1')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin', 'developer'])
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get('usage')
  @ApiOperation({ summary: 'Usage by time bucket (admins: the tenant; developers: their keys), with the quota forecast' })
  @ApiOkResponse({ type: UsageReportResponseDto })
  @ApiProblems('validation_failed', 'not_found')
  async report(@CurrentPrincipal() p: Principal, @Query() q: UsageQueryDto) {
    const r = await this.usage.report(p, {
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
      granularity: q.granularity ?? 'day',
      keyId: q.key_id,
      tool: q.tool,
    });
    return {
      granularity: q.granularity ?? 'day',
      buckets: r.buckets.map((b) => ({ start: b.start.toISOString(), requests: b.requests, tokens: b.tokens, credits: b.credits })),
      forecast: r.forecast,
    };
  }

  @Get('api-keys/:id/usage')
  @ApiTags('api-keys')
  @ApiOperation({ summary: 'Usage totals of one key' })
  @ApiOkResponse({ type: KeyUsageResponseDto })
  @ApiProblems('not_found')
  async forKey(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    const u = await this.usage.forKey(p, id);
    return {
      key_id: u.keyId,
      requests_count: u.requests,
      tokens_used: u.tokens,
      credits_used: u.credits,
      last_used_at: u.lastUsedAt ? u.lastUsedAt.toISOString() : null,
    };
  }
}
