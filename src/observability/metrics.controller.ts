import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { HttpProblem } from '../shared/http/http-problem';
import { DomainError } from '../shared/domain/domain-error';
import { PrometheusMetrics } from './prometheus-metrics';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * GET /metrics (Prometheus text format). With METRICS_TOKEN set it takes
 * `Authorization: Bearer <METRICS_TOKEN>`; without, it answers only callers on
 * the loopback interface that did not come through a proxy (no
 * X-Forwarded-For), so a scraper on the same host or a sidecar works and the
 * public listener does not leak the series.
 */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: PrometheusMetrics,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    this.authorize(req);
    reply.header('Content-Type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }

  private authorize(req: FastifyRequest): void {
    const token = this.config.metricsToken;
    if (token) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !safeEqual(m[1], token)) {
        throw new HttpProblem('unauthenticated', 'Send the metrics token as "Authorization: Bearer <METRICS_TOKEN>".', {
          'WWW-Authenticate': 'Bearer realm="tollgate-metrics"',
        });
      }
      return;
    }
    const remote = req.raw.socket?.remoteAddress ?? '';
    if (!LOOPBACK.has(remote) || req.headers['x-forwarded-for'] !== undefined) {
      throw new DomainError('forbidden', 'Metrics are served to loopback callers only; set METRICS_TOKEN to scrape from elsewhere.');
    }
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
