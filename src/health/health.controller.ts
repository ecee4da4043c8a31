import { Controller, Get, Res } from '@nestjs/common';
import { HealthCheckError, HealthCheckResult, HealthCheckService, HealthIndicatorResult, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';

/** Liveness (the process answers) and readiness (PostgreSQL reachable, migrations applied). */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly dataSource: DataSource,
  ) {}

  @Get('live')
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        () => this.db.pingCheck('database', { timeout: 2_000 }),
        () => this.migrations(),
      ]);
    } catch (err) {
      // Terminus throws a 503 whose body is the check result: keep that body, it is what operators read.
      const body = (err as { response?: HealthCheckResult }).response;
      reply.status(503);
      return body ?? { status: 'error', info: {}, error: {}, details: {} };
    }
  }

  private async migrations(): Promise<HealthIndicatorResult> {
    const pending = await this.dataSource.showMigrations();
    const result = { migrations: { status: pending ? 'down' : 'up', pending } } as HealthIndicatorResult;
    if (pending) throw new HealthCheckError('Migrations pending', result);
    return result;
  }
}
