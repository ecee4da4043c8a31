import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AGENT_API_KEY, AGENT_BEARER, MANAGEMENT_JWT } from './api-problems.decorator';
import { FieldErrorDto, ProblemDto } from './problem.dto';

export const DOCS_PATH = 'docs';
export const OPENAPI_JSON_PATH = 'docs/openapi.json';

/** The OpenAPI 3 document of the running app (routes, schemas, both security schemes, every problem code). */
export function buildOpenApiDocument(app: INestApplication, publicUrl?: string): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Tollgate')
    .setDescription(
      [
        'Self-hosted access gateway for MCP tools: API keys, scopes, plans, metering, audit.',
        '',
        '* **Management** routes take a JWT: `Authorization: Bearer <jwt>` (scheme `management-jwt`).',
        '* **Agent** routes (`/mcp`, `/api/v1/mcp/tools`) take an API key: `X-API-Key: <key>` or `Authorization: Bearer <key>`.',
        '* Every error is `application/problem+json` with a stable `code`; each route lists its codes with an example.',
      ].join('\n'),
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Management JWT (admin, developer, auditor, service roles).' }, MANAGEMENT_JWT)
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'Agent API key.' }, AGENT_API_KEY)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'Agent API key sent as a bearer token.' }, AGENT_BEARER);
  if (publicUrl) builder.addServer(publicUrl);
  return SwaggerModule.createDocument(app, builder.build(), {
    extraModels: [ProblemDto, FieldErrorDto],
    operationIdFactory: (controller, method) => `${controller.replace(/Controller$/, '')}_${method}`,
  });
}

const UI_ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
};

const UI_HTML = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Tollgate API</title><link rel="stylesheet" href="/${DOCS_PATH}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/${DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="/${DOCS_PATH}/swagger-ui-init.js"></script>
</body>
</html>
`;

const UI_INIT = `window.ui = SwaggerUIBundle({ url: '/${OPENAPI_JSON_PATH}', dom_id: '#swagger-ui', persistAuthorization: true, deepLinking: true });\n`;

/**
 * Serves the document at /docs/openapi.json (and .yaml) through SwaggerModule,
 * and the Swagger UI at /docs from swagger-ui-dist with four explicit routes
 * (no @fastify/static: no wildcard route, and its ESM-only dependencies do not
 * load under Jest).
 */
export function setupOpenApi(app: NestFastifyApplication, publicUrl?: string): void {
  SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app, publicUrl), {
    ui: false,
    raw: ['json', 'yaml'],
    jsonDocumentUrl: OPENAPI_JSON_PATH,
    yamlDocumentUrl: `${DOCS_PATH}/openapi.yaml`,
  });
  const fastify = app.getHttpAdapter().getInstance();
  const dist = (require('swagger-ui-dist') as { getAbsoluteFSPath(): string }).getAbsoluteFSPath();
  fastify.get(`/${DOCS_PATH}`, (_req, reply) => {
    void reply.type('text/html; charset=utf-8').send(UI_HTML);
  });
  fastify.get(`/${DOCS_PATH}/swagger-ui-init.js`, (_req, reply) => {
    void reply.type('application/javascript; charset=utf-8').send(UI_INIT);
  });
  for (const [file, type] of Object.entries(UI_ASSETS)) {
    fastify.get(`/${DOCS_PATH}/${file}`, (_req, reply) => {
      void reply.type(type).header('Cache-Control', 'public, max-age=86400').send(createReadStream(join(dist, file)));
    });
  }
}
