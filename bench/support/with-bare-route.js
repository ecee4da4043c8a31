'use strict';
/**
 * Tollgate exactly as `npm start` runs it (argv[2] is dist/src/main.js, or src/main.ts under
 * ts-node), plus the baseline issue 7 names for S1: a bare Fastify JSON route in the same app
 * (and a second one with a body of the tool list's size).
 * `GET /bench/bare` is registered on Nest's Fastify instance, so it pays what every request of the
 * app pays at the Fastify level (request id, the in-flight count, metrics, the request log line) and
 * nothing of Nest's (no router, guards, pipes, interceptors or filters). Plain JavaScript so that the
 * bench can start it in front of the compiled build.
 */
const { bootstrap } = require(process.argv[2]);

/**
 * A body as large as S1's tool list (7.8 KB of JSON), serialised once as Tollgate serialises the list
 * once per catalog and scope: `/bench/bare-list` tells what the size of S1's answer costs by itself.
 */
const LIST_BYTES = 7_800;
const tools = [];
while (JSON.stringify({ data: tools }).length < LIST_BYTES) {
  const i = tools.length;
  tools.push({ name: `everything__tool_${i}`, description: `Tool ${i} of the bench list, about as long as a real description.`, input_schema: { type: 'object', properties: { message: { type: 'string' } } } });
}
const listBody = JSON.stringify({ data: tools });

bootstrap({
  beforeListen: (app) => {
    const fastify = app.getHttpAdapter().getInstance();
    fastify.get('/bench/bare', async () => ({ status: 'ok' }));
    fastify.get('/bench/bare-list', (request, reply) => {
      reply.type('application/json; charset=utf-8').send(listBody);
    });
  },
}).catch((err) => {
  process.stderr.write(`Tollgate failed to start: ${(err && err.stack) || String(err)}\n`);
  process.exit(1);
});
