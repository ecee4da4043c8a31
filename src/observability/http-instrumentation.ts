import { Injectable } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { RequestLog } from './logging';
import { PrometheusMetrics } from './prometheus-metrics';

/**
 * Requests being served, for graceful shutdown: SIGTERM waits until this
 * reaches 0 (or the deadline). Counted on the raw response, so hijacked
 * replies (/mcp, written by the MCP SDK) count too.
 */
@Injectable()
export class InFlightRequests {
  /**
   * Responses in flight, by slot; `free` lists the empty slots. Not a Set:
   * with a few dozen requests coming and going, V8 shrank and rehashed the
   * Set's table over and over (~2.5 % of GET /api/v1/mcp/tools by `perf`,
   * bench/README.md). A slot array reuses its cells and never reallocates
   * once it has grown to the peak concurrency.
   */
  private readonly slots: (ServerResponse | undefined)[] = [];
  private readonly free: number[] = [];
  private count = 0;
  private waiters: (() => void)[] = [];
  private drainingSince: number | null = null;

  get size(): number {
    return this.count;
  }

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  /** From now on every response closes its connection (those not yet started included). */
  startDraining(): void {
    this.drainingSince ??= Date.now();
    for (const res of this.slots) if (res !== undefined && !res.headersSent) res.setHeader('Connection', 'close');
  }

  /** Counts a response in; the slot returned is what finished() takes back. */
  started(res: ServerResponse): number {
    const slot = this.free.pop() ?? this.slots.length;
    this.slots[slot] = res;
    this.count++;
    if (this.draining) res.setHeader('Connection', 'close');
    return slot;
  }

  /** `res`: the response started() gave `slot` for; a slot freed and taken again since is left alone. */
  finished(slot: number, res: ServerResponse): void {
    if (this.slots[slot] !== res) return;
    this.slots[slot] = undefined;
    this.free.push(slot);
    this.count--;
    if (this.count === 0) for (const w of this.waiters.splice(0)) w();
  }

  private handlers = 0;
  private handlerWaiters: (() => void)[] = [];

  /** Route handlers still running (their client may be gone: after a cut they still release what they admitted). */
  get handlersRunning(): number {
    return this.handlers;
  }

  /**
   * Runs a handler that admits something it must later release or meter (a
   * tool call), counted until it settles even if its client is gone.
   *
   * Explicit rather than a global Nest interceptor: Nest 11 wraps every
   * interceptor call in `AsyncResource.bind` + rxjs, which measured ~95 µs of
   * CPU per request on every route (bench/README.md). Other handlers write in
   * one transaction each: cut short by the pool closing, they roll back whole.
   */
  async track<T>(handler: () => Promise<T>): Promise<T> {
    this.handlers++;
    try {
      return await handler();
    } finally {
      this.handlers--;
      if (this.handlers === 0) for (const w of this.handlerWaiters.splice(0)) w();
    }
  }

  /** Resolves true once no route handler runs, false if `timeoutMs` passes first. */
  handlersIdle(timeoutMs: number): Promise<boolean> {
    if (this.handlers === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.handlerWaiters = this.handlerWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.handlerWaiters.push(done);
    });
  }

  /** Resolves true once nothing is in flight, false if `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(done);
    });
  }
}

/**
 * One onRequest hook: request count and latency by route template and status,
 * the request's log line, the in-flight count, and `Connection: close` on every
 * response while draining (so keep-alive clients move to another replica
 * instead of getting a 503). Hooked on the raw response, so hijacked replies
 * (/mcp, written by the MCP SDK) are counted and logged too.
 */
export function instrumentHttp(app: NestFastifyApplication): void {
  const metrics = app.get(PrometheusMetrics);
  const inFlight = app.get(InFlightRequests);
  const log = app.get(RequestLog);
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (request, reply, done) => {
      const start = process.hrtime.bigint();
      const slot = inFlight.started(reply.raw);
      metrics.httpInFlight.inc();
      let ended = false;
      const end = (aborted: boolean) => {
        if (ended) return;
        ended = true;
        inFlight.finished(slot, reply.raw);
        metrics.httpInFlight.dec();
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        // Fastify builds a new routeOptions object on every read: once per request.
        const route = routeOf(request);
        metrics.httpRequest(request.method, route, reply.raw.statusCode, seconds);
        log.completed(request, route, reply.raw.statusCode, seconds * 1000, aborted);
      };
      reply.raw.once('finish', () => end(false));
      // 'close' first: the client went away before the response was written.
      reply.raw.once('close', () => end(true));
      done();
    });
}

/** The route template (`/api/v1/api-keys/:id`); `unmatched` for 404s, so labels stay bounded. */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions?.url ?? 'unmatched';
}
