import { Global, Module, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { AppConfig } from '../config/app-config';
import { UsageBuffer } from '../usage/application/usage-buffer';
import { InFlightRequests } from './http-instrumentation';
import { createRootLogger, LogDestination, PinoNestLogger, RequestLog, ROOT_LOGGER } from './logging';
import { Metrics } from './metrics';
import { MetricsController } from './metrics.controller';
import { PrometheusMetrics } from './prometheus-metrics';

/**
 * O3–O5: Prometheus metrics (`Metrics` port for application code,
 * `PrometheusMetrics` for /metrics), pino logs (one line per request, and
 * Nest's own logger), and the
 * in-flight tracker graceful shutdown waits on. Global, so a service reports
 * a metric by injecting `Metrics` and nothing else.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    { provide: LogDestination, useValue: new LogDestination() },
    { provide: ROOT_LOGGER, inject: [AppConfig, LogDestination], useFactory: createRootLogger },
    RequestLog,
    PinoNestLogger,
    PrometheusMetrics,
    { provide: Metrics, useExisting: PrometheusMetrics },
    InFlightRequests,
  ],
  exports: [Metrics, PrometheusMetrics, InFlightRequests, RequestLog, PinoNestLogger],
})
export class ObservabilityModule implements OnModuleInit {
  constructor(
    private readonly metrics: PrometheusMetrics,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    // Read on scrape; resolved lazily so this module does not import the usage module.
    const buffer = this.moduleRef.get(UsageBuffer, { strict: false });
    this.metrics.gauge('tollgate_usage_buffer_depth', 'Usage cells counted in memory and not yet written to PostgreSQL.', () => buffer.depth);
  }
}
