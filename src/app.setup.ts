import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig } from './config/app-config';
import { DomainError } from './shared/domain/domain-error';
import { ProblemDetailsFilter } from './shared/http/problem-details.filter';
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
  });
}

/**
 * Everything main.ts and the e2e tests share: one validation pipe, one
 * problem+json filter, request-id echo. (Signals are handled by main.ts,
 * which must stop the embedded database after the app.)
 */
export async function configureApp(app: NestFastifyApplication): Promise<NestFastifyApplication> {
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter());
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
