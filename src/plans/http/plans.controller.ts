import { Body, Controller, Get, Param, Put, Query, UseGuards } from '@nestjs/common';
import { AnonymousThrottlerGuard } from './anonymous-throttler.guard';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, CurrentRequestMeta, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import { actorOf, Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import type { RequestMeta } from '../../shared/domain/actor';
import { ValidationFailedError } from '../../shared/domain/domain-error';
import { ApiManagementAuth, ApiProblems, BODY_PROBLEMS } from '../../shared/http/api-problems.decorator';
import { CreditBalanceResponseDto, CreditTransactionPageResponseDto, PlanListResponseDto, PricesResponseDto } from './plans-response.dto';
import { CreditsService } from '../application/credits.service';
import { SubscriptionsService } from '../application/subscriptions.service';
import { SetPriceDto, toPlanResponse, TOOL_NAME_PARAM, toTransactionResponse, TransactionsQueryDto } from './plans.dto';

/** GET /api/v1/plans: public, so agents and UIs can show the tiers. */
@ApiTags('plans')
@ApiProblems('rate_limited', 'internal_error')
@UseGuards(AnonymousThrottlerGuard)
@Controller('api/v1/plans')
export class PlansController {
  constructor(private readonly subscriptions: SubscriptionsService) {}

  @Get()
  @ApiOperation({ summary: 'The plan catalog (public)' })
  @ApiOkResponse({ type: PlanListResponseDto })
  list() {
    return { data: this.subscriptions.catalog.all().map(toPlanResponse) };
  }
}

/** P4 for admins: balance, ledger, prices. */
@ApiTags('credits')
@ApiManagementAuth()
@Controller('api/v1/credits')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['admin'])
export class CreditsController {
  constructor(
    private readonly credits: CreditsService,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Credit balance and plan of the tenant' })
  @ApiOkResponse({ type: CreditBalanceResponseDto })
  async balance(@CurrentPrincipal() p: Principal) {
    const [balance, tp] = await Promise.all([this.credits.balance(p.tenantId), this.subscriptions.planFor(p.tenantId)]);
    return { balance, plan: tp.plan.id, subscribed_plan: tp.subscribedPlanId, subscription_status: tp.status };
  }

  @Get('transactions')
  @ApiOperation({ summary: 'The credit ledger, newest first' })
  @ApiOkResponse({ type: CreditTransactionPageResponseDto })
  @ApiProblems('validation_failed')
  async transactions(@CurrentPrincipal() p: Principal, @Query() q: TransactionsQueryDto) {
    const limit = q.limit ?? 50;
    const rows = await this.credits.transactions(p.tenantId, limit + 1, q.cursor);
    const data = rows.slice(0, limit);
    return { data: data.map(toTransactionResponse), next_cursor: rows.length > limit ? data[data.length - 1].seq : null };
  }

  @Get('prices')
  @ApiOperation({ summary: 'Default and per-tool prices' })
  @ApiOkResponse({ type: PricesResponseDto })
  prices(@CurrentPrincipal() p: Principal) {
    return this.credits.listPrices(p.tenantId);
  }

  @Put('prices/:tool')
  @ApiOperation({ summary: 'Price a tool (credits per call); null restores the default' })
  @ApiParam({ name: 'tool', description: 'Exposed tool name', example: 'github__create_issue' })
  @ApiOkResponse({ type: PricesResponseDto })
  @ApiProblems(...BODY_PROBLEMS)
  async setPrice(@CurrentPrincipal() p: Principal, @Param('tool') tool: string, @Body() dto: SetPriceDto, @CurrentRequestMeta() meta: RequestMeta) {
    if (!TOOL_NAME_PARAM.test(tool)) throw new ValidationFailedError([{ field: 'tool', message: 'must be an exposed tool name' }]);
    await this.credits.setPrice(p.tenantId, tool, dto.price, actorOf(p), meta);
    return this.credits.listPrices(p.tenantId);
  }
}
