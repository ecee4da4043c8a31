import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { iso } from '../../api-keys/http/api-key.dto';
import { CurrentPrincipal, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import { ApiManagementAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { VerifyKeyService } from '../application/verify-key.service';
import { VerifyKeyDto, VerifyKeyResponseDto } from './verify.dto';

/** K8: other backends verify a key (and a resource), and may charge it, as they would ask Unkey. Always 200. */
@ApiTags('api-keys')
@ApiManagementAuth()
@Controller('api/v1/keys')
@UseGuards(JwtAuthGuard, RolesGuard)
export class VerifyController {
  constructor(private readonly verifier: VerifyKeyService) {}

  @Post('verify')
  @ApiOperation({ summary: 'Verify an agent key (optionally for a resource, optionally charging `cost` credits) for another backend; always 200' })
  @ApiOkResponse({ type: VerifyKeyResponseDto })
  @ApiProblems(...BODY_PROBLEMS)
  @HttpCode(200)
  @Roles(['service', 'admin'])
  async verify(@CurrentPrincipal() p: Principal, @Body() dto: VerifyKeyDto): Promise<VerifyKeyResponseDto> {
    const r = await this.verifier.verify(p, { key: dto.key, resource: dto.resource, cost: dto.cost });
    return {
      valid: r.valid,
      code: r.code,
      key_id: r.keyId,
      tenant_id: r.tenantId,
      user_id: r.userId,
      name: r.name,
      plan: r.plan,
      expires_at: iso(r.expiresAt),
      resource: r.resource,
      allowed: r.allowed,
      matched_rule: r.matchedRule,
      remaining: r.remaining,
      ratelimit: r.rateLimit && { window: r.rateLimit.window, limit: r.rateLimit.limit, remaining: r.rateLimit.remaining, reset_seconds: r.rateLimit.resetSeconds },
      details: r.details,
    };
  }
}
