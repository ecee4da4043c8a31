import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckError, HealthCheckResult, HealthCheckService, HealthIndicatorFunction, HealthIndicatorResult, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { CircuitBreaker } from '../mcp/domain/circuit-breaker';
import { InFlightRequests } from '../observability/http-instrumentation';
import { LivenessResponseDto, ReadinessResponseDto } from './health.dto';
import { RedisHealthIndicator } from './redis.health';

const CHECK_TIMEOUT_MS = 2_000;

/**
 * Liveness (the process answers) and readiness (PostgreSQL reachable,
 * migrations applied, Redis answering when REDIS_URL is set, not shutting
 * down). Every probe checks afresh, so readiness recovers on its own when a
 * dependency returns.
 */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
    private readonly dataSource: DataSource,
    private readonly inFlight: InFlightRequests,
    private readonly circuits: CircuitBreaker,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiOkResponse({ type: LivenessResponseDto })
  live(): LivenessResponseDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'Readiness: PostgreSQL, migrations, Redis (when configured); 503 while shutting down' })
  @ApiOkResponse({ type: ReadinessResponseDto })
  @ApiServiceUnavailableResponse({ type: ReadinessResponseDto, description: 'A dependency is down, or the process is draining.' })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult | ReadinessResponseDto> {
    if (this.inFlight.draining) {
      reply.status(503);
      return { status: 'shutting_down', info: {}, error: {}, details: {} };
    }
    const checks: HealthIndicatorFunction[] = [
      () => this.db.pingCheck('database', { timeout: CHECK_TIMEOUT_MS }),
      () => this.migrations(),
    ];
    if (this.redis.configured) checks.push(() => this.redis.pingCheck('redis', CHECK_TIMEOUT_MS));
    // Upstreams are reported, never a reason to be unready: one tenant's dead upstream must not take the
    // replica (and every tenant) out of the load balancer; its calls fail fast through its open circuit.
    checks.push(async () => {
      const { open, failing } = this.circuits.summary(Date.now());
      return { upstreams: { status: 'up', open_circuits: open, failing } } as HealthIndicatorResult;
    });
    try {
      return await this.health.check(checks);
    } catch (err) {
      // Terminus throws a 503 whose body is the check result: keep that body, it is what operators read.
      const body = (err as { response?: HealthCheckResult }).response;
      reply.status(503);
      return body ?? { status: 'error', info: {}, error: {}, details: {} };
    }
  }

  private async migrations(): Promise<HealthIndicatorResult> {
    let pending: boolean;
    try {
      pending = await this.dataSource.showMigrations();
    } catch (err) {
      const down = { migrations: { status: 'down', message: (err as Error).message } } as HealthIndicatorResult;
      throw new HealthCheckError('Migrations unknown', down);
    }
    const result = { migrations: { status: pending ? 'down' : 'up', pending } } as HealthIndicatorResult;
    if (pending) throw new HealthCheckError('Migrations pending', result);
    return result;
  }
}
