import { Writable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { AppConfig } from '../config/app-config';
import { createRootLogger, loggedUrl, LogDestination, PinoNestLogger, RequestLog } from './logging';

function capture(level = 'log') {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const logger = createRootLogger({ logLevel: level, nodeEnv: 'production' } as AppConfig, new LogDestination(sink));
  return { logger, lines };
}

const request = (over: Partial<Record<string, unknown>> = {}) =>
  ({
    id: 'req-1',
    method: 'GET',
    url: '/api/v1/mcp/tools?x=1',
    ip: '127.0.0.1',
    headers: { 'x-api-key': 'tg_live_secret', authorization: 'Bearer abc', cookie: 'session=s', accept: '*/*', 'user-agent': 'agent/1.0' },
    routeOptions: { url: '/api/v1/mcp/tools' },
    agent: { tenantId: 'acme', keyId: 'k1' },
    ...over,
  }) as unknown as FastifyRequest;

describe('RequestLog', () => {
  it('writes one line with route, tenant, key, status and latency, headers redacted', () => {
    const { logger, lines } = capture();
    new RequestLog(logger).completed(request(), '/api/v1/mcp/tools', 200, 1.23456, false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request completed',
      request_id: 'req-1',
      route: '/api/v1/mcp/tools',
      tenant_id: 'acme',
      key_id: 'k1',
      res: { status: 200 },
      latency_ms: 1.235,
      req: { method: 'GET', url: '/api/v1/mcp/tools?x=[redacted]', remote_address: '127.0.0.1' },
    });
    // An allow-list: credentials never reach the line (and there is nothing left to redact).
    expect(lines[0].req.headers).toEqual({ 'user-agent': 'agent/1.0' });
  });

  it('writes the names of query parameters, never their values (a key sent as ?api_key=… stays out of the log)', () => {
    const { logger, lines } = capture();
    new RequestLog(logger).completed(request({ url: '/api/v1/mcp/tools?api_key=tg_live_secretvalue&limit=5&flag' }), '/api/v1/mcp/tools', 401, 1, false);
    expect(lines[0].req.url).toBe('/api/v1/mcp/tools?api_key=[redacted]&limit=[redacted]&flag=[redacted]');
    expect(JSON.stringify(lines)).not.toContain('tg_live_secretvalue');
    expect(loggedUrl('/health/live', '/health/live')).toBe('/health/live');
  });

  it('logs 4xx and aborted requests as warn, 5xx as error, and skips quiet routes only when they succeed', () => {
    const { logger, lines } = capture();
    const log = new RequestLog(logger);
    log.completed(request(), '/api/v1/mcp/tools', 404, 1, false);
    log.completed(request(), '/api/v1/mcp/tools', 200, 1, true);
    log.completed(request(), '/api/v1/mcp/tools', 503, 1, false);
    log.completed(request({ url: '/health/live' }), '/health/live', 200, 1, false);
    log.completed(request({ url: '/health/ready' }), '/health/ready', 503, 1, false);
    expect(lines.map((l) => [l.level, l.msg, l.res.status])).toEqual([
      [40, 'request completed', 404],
      [40, 'request aborted', 200],
      [50, 'request completed', 503],
      [50, 'request completed', 503],
    ]);
    expect(lines[1].aborted).toBe(true);
  });

  it('still redacts secrets in other lines of the same logger', () => {
    const { logger, lines } = capture();
    new RequestLog(logger).completed(request(), '/api/v1/mcp/tools', 200, 1, false);
    logger.info({ req: { headers: { authorization: 'Bearer abc' } }, token: 'tg_live_secret' }, 'other');
    expect(lines[1].req.headers.authorization).toBe('[redacted]');
    expect(lines[1].token).toBe('[redacted]');
  });

  it('writes nothing for successful requests at LOG_LEVEL=warn', () => {
    const { logger, lines } = capture('warn');
    new RequestLog(logger).completed(request(), '/api/v1/mcp/tools', 200, 1, false);
    expect(lines).toEqual([]);
  });
});

describe('PinoNestLogger', () => {
  it("maps Nest's levels and context, and keeps an error's stack", () => {
    const { logger, lines } = capture('verbose');
    const nest = new PinoNestLogger(logger);
    nest.log('started', 'Tollgate');
    nest.warn('slow', 'Shutdown');
    nest.error('failed', 'Error: boom\n    at x', 'Usage');
    nest.verbose('details');
    nest.error(new Error('bad'));
    expect(lines.map((l) => [l.level, l.msg, l.context])).toEqual([
      [30, 'started', 'Tollgate'],
      [40, 'slow', 'Shutdown'],
      [50, 'failed', 'Usage'],
      [10, 'details', undefined],
      [50, 'bad', undefined],
    ]);
    expect(lines[2].stack).toContain('boom');
    expect(lines[4].err.message).toBe('bad');
  });
});
