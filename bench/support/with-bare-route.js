'use strict';
/**
 * Tollgate exactly as `npm start` runs it (argv[2] is dist/src/main.js, or src/main.ts under
 * ts-node), plus the baseline issue 7 names for S1: a bare Fastify JSON route in the same app.
 * `GET /bench/bare` is registered on Nest's Fastify instance, so it pays what every request of the
 * app pays at the Fastify level (request id, the in-flight count, metrics, the request log line) and
 * nothing of Nest's (no router, guards, pipes, interceptors or filters). Plain JavaScript so that the
 * bench can start it in front of the compiled build.
 */
const { bootstrap } = require(process.argv[2]);

bootstrap({
  beforeListen: (app) => {
    app
      .getHttpAdapter()
      .getInstance()
      .get('/bench/bare', async () => ({ status: 'ok' }));
  },
}).catch((err) => {
  process.stderr.write(`Tollgate failed to start: ${(err && err.stack) || String(err)}\n`);
  process.exit(1);
});
