import { Body, Controller, Delete, Get, HttpCode, Put, Query, UseGuards } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { CurrentPrincipal, CurrentRequestMeta, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import { actorOf, Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { NotFoundError } from '../../shared/domain/domain-error';
import { AlertsService } from '../application/alerts.service';
import type { AlertDelivery, AlertSettings } from '../domain/alerts';

export class AlertSettingsDto {
  @IsString()
  @Length(1, 2048)
  url: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  credits_threshold?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(90)
  key_expiry_days?: number;

  @IsOptional()
  @IsBoolean()
  rotate_secret?: boolean;
}

export class DeliveriesQueryDto {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}

const settingsBody = (s: AlertSettings) => ({ url: s.url, credits_threshold: s.creditsThreshold, key_expiry_days: s.keyExpiryDays });

const deliveryBody = (d: AlertDelivery) => ({
  id: d.id,
  type: d.type,
  status: d.status,
  attempts: d.attempts,
  payload: d.payload,
  last_status: d.lastStatus,
  last_error: d.lastError,
  next_attempt_at: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
  created_at: d.createdAt.toISOString(),
  delivered_at: d.deliveredAt?.toISOString() ?? null,
});

/** P6: where a tenant's alerts go, and what was delivered. */
@Controller('api/v1/alerts')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin'])
export class AlertsController {
  constructor(private readonly alerts: AlertsService) {}

  @Put('settings')
  async configure(@CurrentPrincipal() p: Principal, @Body() dto: AlertSettingsDto, @CurrentRequestMeta() meta: RequestMeta) {
    const { settings, secretShown } = await this.alerts.configure(
      p.tenantId,
      { url: dto.url, creditsThreshold: dto.credits_threshold, keyExpiryDays: dto.key_expiry_days, rotateSecret: dto.rotate_secret },
      actorOf(p),
      meta,
    );
    return { ...settingsBody(settings), ...(secretShown ? { signing_secret: secretShown } : {}) };
  }

  @Get('settings')
  async get(@CurrentPrincipal() p: Principal) {
    const s = await this.alerts.settings(p.tenantId);
    if (!s) throw new NotFoundError('Alert settings');
    return settingsBody(s);
  }

  @Delete('settings')
  @HttpCode(204)
  async remove(@CurrentPrincipal() p: Principal, @CurrentRequestMeta() meta: RequestMeta) {
    if (!(await this.alerts.remove(p.tenantId, actorOf(p), meta))) throw new NotFoundError('Alert settings');
  }

  @Get('deliveries')
  async deliveries(@CurrentPrincipal() p: Principal, @Query() q: DeliveriesQueryDto) {
    return { data: (await this.alerts.deliveries(p.tenantId, q.limit ?? 50)).map(deliveryBody) };
  }
}
