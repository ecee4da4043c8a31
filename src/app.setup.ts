import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig } from './config/app-config';
import { DomainError } from './shared/domain/domain-error';
import { instrumentHttp } from './observability/http-instrumentation';
import { PrometheusMetrics } from './observability/prometheus-metrics';
import { HttpProblem } from './shared/http/http-problem';
import { setupOpenApi } from './shared/http/openapi';
import { ProblemDetailsFilter, sendFrameworkProblem } from './shared/http/problem-details.filter';
import { createValidationPipe } from './shared/http/validation';

/** Largest accepted request body. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The Fastify adapter: body limit, request ids (X-Request-Id honoured when sane), proxy awareness. */
export function createFastifyAdapter(config: AppConfig): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.trustProxy,
    requestIdHeader: false,
    genReqId: (req: IncomingMessage) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    logger: false,
    // Router refusals (bad URL, over-long path parameter) as problem+json too.
    frameworkErrors: sendFrameworkProblem,
  });
}

/**
 * Everything main.ts and the e2e tests share: one validation pipe, one
 * problem+json filter, request-id echo, HTTP metrics and in-flight tracking,
 * OpenAPI at /docs. (Signals are handled by main.ts, which drains, closes the
 * app, then stops the embedded database.)
 */
export async function configureApp(app: NestFastifyApplication): Promise<NestFastifyApplication> {
  const metrics = app.get(PrometheusMetrics);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(
    new ProblemDetailsFilter((exception, problem) => {
      // Per-key rate limits are refused by a guard (HttpProblem); quota and credit refusals are counted by the call pipeline.
      if (exception instanceof HttpProblem && problem.code === 'rate_limited') metrics.rejected('rate_limited');
    }),
  );
  instrumentHttp(app);
  setupOpenApi(app, app.get(AppConfig).publicUrl);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', String(request.id));
    // Bodies are JSON only: the text/plain and form parsers would turn `curl -d '{"key":"tg_…"}'`
    // into a 422 whose errors echo the body (and the key) back.
    const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
    const type = request.headers['content-type'] ?? '';
    if (hasBody && !/^application\/json\s*(;|$)/i.test(type)) {
      throw new DomainError('unsupported_media_type', 'Send the body as application/json.');
    }
  });
  return app;
}
