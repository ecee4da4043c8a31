import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';
import { HttpProblem } from '../../shared/http/http-problem';
import type { SubscriptionsService } from '../application/subscriptions.service';
import type { Plan } from '../domain/plan';
import { MemoryThrottlerStorage } from '../infrastructure/memory-throttler.storage';
import type { LimitWindow, MultiWindowResult } from '../infrastructure/multi-window-limiter';
import { AgentThrottlerGuard, requestHits } from './agent-throttler.guard';

/** As configured in plans.module.ts. */
const THROTTLERS = {
  throttlers: [
    { name: 'minute', ttl: 60_000, limit: 60 },
    { name: 'hour', ttl: 3_600_000, limit: 1_000 },
    { name: 'tool_call', ttl: 60_000, limit: 30 },
  ],
};

const plan = (toolCallsPerMinute?: number): Plan => ({
  id: 'p',
  name: 'P',
  rateLimits: { perMinute: 10, perHour: 100, ...(toolCallsPerMinute === undefined ? {} : { toolCallsPerMinute }) },
  quotas: { requestsPerMonth: 1_000, tokensPerMonth: 1_000_000 },
  maxKeys: 10,
  includedCredits: 0,
});

const rec = (totalHits: number, isBlocked = false, timeToExpire = 60, timeToBlockExpire = 0): ThrottlerStorageRecord => ({ totalHits, timeToExpire, isBlocked, timeToBlockExpire });

/** A multi-window storage that records its calls and answers what the test says. */
class FakeStorage {
  calls: LimitWindow[][] = [];
  increments = 0;
  constructor(private readonly answer: (w: readonly LimitWindow[]) => MultiWindowResult) {}
  async increment(): Promise<ThrottlerStorageRecord> {
    this.increments++;
    throw new Error('the agent guard must not call increment on a multi-window storage');
  }
  async hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
    this.calls.push([...windows]);
    return this.answer(windows);
  }
}

async function setup(storage: unknown, p: Plan) {
  const planFor = jest.fn(async () => ({ plan: p, subscribedPlanId: p.id, status: 'active' }));
  const guard = new AgentThrottlerGuard(THROTTLERS, storage as ThrottlerStorage, new Reflector(), { planFor } as unknown as SubscriptionsService);
  await guard.onModuleInit();
  return { guard, planFor };
}

function request(opts: { method?: string; url?: string; body?: unknown; agent?: boolean } = {}) {
  const headers: Record<string, string> = {};
  const req = {
    method: opts.method ?? 'GET',
    url: opts.url ?? '/api/v1/mcp/tools',
    body: opts.body,
    ...(opts.agent === false ? {} : { agent: { keyId: 'key-1', tenantId: 'tenant-1' } }),
  };
  const reply = { header: jest.fn((name: string, value: string) => (headers[name] = value)) };
  const context = {
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => reply }),
    getHandler: () => request,
    getClass: () => AgentThrottlerGuard,
  } as unknown as ExecutionContext;
  return { context, headers };
}

const toolCall = () => request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call?x=1', body: { arguments: {} } });

describe('AgentThrottlerGuard', () => {
  it('resolves the plan once and counts all windows in one storage call, in order minute → tool_call → hour', async () => {
    const storage = new FakeStorage((w) => ({ blockedIndex: -1, records: w.map(() => rec(1)) }));
    const { guard, planFor } = await setup(storage, plan(5));
    const { context } = toolCall();
    await expect(guard.canActivate(context)).resolves.toBe(true);
    expect(planFor).toHaveBeenCalledTimes(1);
    expect(planFor).toHaveBeenCalledWith('tenant-1');
    expect(storage.calls).toEqual([
      [
        { name: 'minute', key: 'tg:rl:minute:key:tenant-1:key-1', ttlMs: 60_000, limit: 10, blockDurationMs: 60_000, hits: 1 },
        { name: 'tool_call', key: 'tg:rl:tool_call:key:tenant-1:key-1', ttlMs: 60_000, limit: 5, blockDurationMs: 60_000, hits: 1 },
        { name: 'hour', key: 'tg:rl:hour:key:tenant-1:key-1', ttlMs: 3_600_000, limit: 100, blockDurationMs: 3_600_000, hits: 1 },
      ],
    ]);
  });

  it('leaves the tool_call window out when the request is no tool call or the plan sets none', async () => {
    const storage = new FakeStorage((w) => ({ blockedIndex: -1, records: w.map(() => rec(1)) }));
    const withToolLimit = await setup(storage, plan(5));
    await withToolLimit.guard.canActivate(request().context);
    await withToolLimit.guard.canActivate(request({ method: 'POST', url: '/mcp', body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }).context);
    await withToolLimit.guard.canActivate(request({ method: 'POST', url: '/mcp', body: [{ method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'tools/call' }] }).context);
    const withoutToolLimit = await setup(storage, plan());
    await withoutToolLimit.guard.canActivate(toolCall().context);
    expect(storage.calls.map((c) => c.map((w) => w.name))).toEqual([
      ['minute', 'hour'],
      ['minute', 'hour'],
      ['minute', 'tool_call', 'hour'], // tools/call inside a JSON-RPC batch
      ['minute', 'hour'],
    ]);
  });

  it('shows the X-RateLimit-* of the window with the fewest requests left (the first one on a tie)', async () => {
    const tight = new FakeStorage(() => ({ blockedIndex: -1, records: [rec(3, false, 50), rec(4, false, 40), rec(7, false, 3000)] }));
    const a = await setup(tight, plan(5));
    const r1 = toolCall();
    await a.guard.canActivate(r1.context);
    expect(r1.headers).toEqual({ 'X-RateLimit-Limit': '5', 'X-RateLimit-Remaining': '1', 'X-RateLimit-Reset': '40' });

    const tie = new FakeStorage(() => ({ blockedIndex: -1, records: [rec(5, false, 50), rec(0, false, 30), rec(95, false, 3000)] }));
    const b = await setup(tie, plan(5));
    const r2 = toolCall();
    await b.guard.canActivate(r2.context);
    expect(r2.headers).toEqual({ 'X-RateLimit-Limit': '10', 'X-RateLimit-Remaining': '5', 'X-RateLimit-Reset': '50' });
  });

  it('refuses with 429 rate_limited for the window that blocked, with Retry-After and quota_info', async () => {
    const storage = new FakeStorage(() => ({ blockedIndex: 1, records: [rec(4, false, 50), rec(6, true, 50, 37)] }));
    const { guard } = await setup(storage, plan(5));
    const before = Date.now();
    const err = await guard.canActivate(toolCall().context).then(
      () => null,
      (e: unknown) => e,
    );
    const after = Date.now();
    expect(err).toBeInstanceOf(HttpProblem);
    const problem = err as HttpProblem;
    expect(problem.code).toBe('rate_limited');
    expect(problem.message).toBe('Rate limit of 5 requests per tool_call for this key (plan "p") exceeded; retry in 37 s.');
    expect(problem.headers).toEqual({ 'Retry-After': '37', 'X-RateLimit-Limit': '5', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '37' });
    expect(problem.details).toMatchObject({ window: 'tool_call', quota_info: { plan: 'p', limit: 5, used: 5, remaining: 0 } });
    const resetAt = Date.parse((problem.details as { quota_info: { reset_at: string } }).quota_info.reset_at);
    expect(resetAt).toBeGreaterThanOrEqual(before + 37_000);
    // Now + Retry-After, "now" being during the call (a loaded host may stretch it past a second).
    expect(resetAt).toBeLessThanOrEqual(after + 37_000);
  });

  it('with the in-process storage: a request refused per minute counts in no later window', async () => {
    const storage = new MemoryThrottlerStorage();
    const { guard } = await setup(storage, { ...plan(5), rateLimits: { perMinute: 2, perHour: 100, toolCallsPerMinute: 5 } });
    await guard.canActivate(toolCall().context);
    await guard.canActivate(toolCall().context);
    for (let i = 0; i < 3; i++) await expect(guard.canActivate(toolCall().context)).rejects.toMatchObject({ code: 'rate_limited', details: { window: 'minute' } });
    expect((await storage.increment('tg:rl:tool_call:key:tenant-1:key-1', 60_000, 5, 60_000, 'tool_call')).totalHits).toBe(3);
    expect((await storage.increment('tg:rl:hour:key:tenant-1:key-1', 3_600_000, 100, 3_600_000, 'hour')).totalHits).toBe(3);
    storage.onApplicationShutdown();
  });

  it('still works on a plain ThrottlerStorage (window after window, stopping at the first block)', async () => {
    const calls: string[] = [];
    const plain: ThrottlerStorage = {
      increment: async (_key, _ttl, _limit, _block, name) => {
        calls.push(name);
        return name === 'tool_call' ? rec(6, true, 60, 12) : rec(1);
      },
    };
    const { guard } = await setup(plain, plan(5));
    await expect(guard.canActivate(toolCall().context)).rejects.toMatchObject({ code: 'rate_limited', details: { window: 'tool_call' } });
    expect(calls).toEqual(['minute', 'tool_call']);
  });

  it("one OAuth subject (one key id) acting in two tenants is limited in each tenant apart, by that tenant's plan", async () => {
    const { guard } = await setup(new MemoryThrottlerStorage(), plan()); // 10 per minute
    for (let i = 0; i < 10; i++) expect((await guard.limitKey('tenant-a', 'subject-1', false)).blocked).toBe(false);
    expect((await guard.limitKey('tenant-a', 'subject-1', false)).blocked).toBe(true);
    const elsewhere = await guard.limitKey('tenant-b', 'subject-1', false);
    expect(elsewhere.blocked).toBe(false);
    expect(elsewhere.remaining).toBe(9);
  });

  describe('JSON-RPC batches: one hit per message', () => {
    const rpc = (id: number | string | undefined, method?: string) => ({ jsonrpc: '2.0', ...(id === undefined ? {} : { id }), ...(method ? { method } : {}) });
    const mcp = (body: unknown) => request({ method: 'POST', url: '/mcp', body });
    const calls = (n: number) => Array.from({ length: n }, (_, i) => rpc(i + 1, 'tools/call'));

    const post = (body: unknown, url = '/mcp') => ({ method: 'POST', url, body });
    it.each([
      ['a GET without a body', { method: 'GET', url: '/api/v1/mcp/tools', body: undefined }, { requests: 1, toolCalls: 0 }],
      ["the REST mirror's /call", post({ arguments: {} }, '/api/v1/mcp/tools/fake__echo/call?x=1'), { requests: 1, toolCalls: 1 }],
      ['one tools/call', post(rpc(1, 'tools/call')), { requests: 1, toolCalls: 1 }],
      ['one tools/list', post(rpc('a', 'tools/list')), { requests: 1, toolCalls: 0 }],
      ['a lone notification', post(rpc(undefined, 'notifications/initialized')), { requests: 1, toolCalls: 0 }],
      ['the review batch: 100 tools/call', post(calls(100)), { requests: 100, toolCalls: 100 }],
      [
        'a mixed batch: 3 tools/call, a tools/list, a ping, a notification, a response, junk',
        post([...calls(3), rpc(10, 'tools/list'), rpc(0, 'ping'), rpc(undefined, 'notifications/cancelled'), { jsonrpc: '2.0', id: 7, result: {} }, null, 5, 'x']),
        { requests: 5, toolCalls: 3 },
      ],
      ['a tools/call without an id (ignored by the server, counted as a tool call all the same)', post([rpc(undefined, 'tools/call')]), { requests: 1, toolCalls: 1 }],
      ['an empty batch', post([]), { requests: 1, toolCalls: 0 }],
      ['a body that is no JSON-RPC', post('hello'), { requests: 1, toolCalls: 0 }],
    ])('%s', (_label, req, expected) => {
      expect(requestHits(req)).toEqual(expected);
    });

    it('puts the counts in the one storage call: requests in minute and hour, tool calls in tool_call', async () => {
      const storage = new FakeStorage((w) => ({ blockedIndex: -1, records: w.map((x) => rec(x.hits ?? 1)) }));
      const { guard } = await setup(storage, { ...plan(50), rateLimits: { perMinute: 100, perHour: 1_000, toolCallsPerMinute: 50 } });
      const { context, headers } = mcp([...calls(7), rpc(8, 'tools/list'), rpc(undefined, 'notifications/initialized')]);
      await expect(guard.canActivate(context)).resolves.toBe(true);
      expect(storage.calls).toEqual([
        [
          expect.objectContaining({ name: 'minute', limit: 100, hits: 8 }),
          expect.objectContaining({ name: 'tool_call', limit: 50, hits: 7 }),
          expect.objectContaining({ name: 'hour', limit: 1_000, hits: 8 }),
        ],
      ]);
      expect(headers['X-RateLimit-Limit']).toBe('50');
      expect(headers['X-RateLimit-Remaining']).toBe('43');
    });

    it('with the in-process storage: Remaining drops by the batch size; a batch that does not fit is refused whole, uncounted after its window', async () => {
      const storage = new MemoryThrottlerStorage();
      const { guard } = await setup(storage, { ...plan(5), rateLimits: { perMinute: 20, perHour: 100, toolCallsPerMinute: 5 } });
      const first = mcp(calls(3));
      await expect(guard.canActivate(first.context)).resolves.toBe(true);
      expect(first.headers).toMatchObject({ 'X-RateLimit-Limit': '5', 'X-RateLimit-Remaining': '2' });

      // 3 tool calls with 2 left: 429 for the whole batch, with the batch named in the detail.
      const err = await guard.canActivate(mcp(calls(3)).context).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HttpProblem);
      expect(err).toMatchObject({ code: 'rate_limited', details: { window: 'tool_call', quota_info: { limit: 5, used: 5, remaining: 0 } } });
      expect((err as HttpProblem).message).toMatch(/^Rate limit of 5 requests per tool_call for this key \(plan "p"\) exceeded: this JSON-RPC batch counts 3 and is refused whole; retry in \d+ s\.$/);
      expect((err as HttpProblem).headers).toMatchObject({ 'X-RateLimit-Remaining': '0' });

      // minute (before tool_call) counted both batches (6), tool_call counted them (6), hour (after it) only the first (3).
      expect((await storage.increment('tg:rl:minute:key:tenant-1:key-1', 60_000, 20, 60_000, 'minute')).totalHits).toBe(7);
      expect((await storage.increment('tg:rl:tool_call:key:tenant-1:key-1', 60_000, 5, 60_000, 'tool_call')).totalHits).toBe(7);
      expect((await storage.increment('tg:rl:hour:key:tenant-1:key-1', 3_600_000, 100, 3_600_000, 'hour')).totalHits).toBe(4);
      storage.onApplicationShutdown();
    });

    it('a batch larger than a limit is refused even on a fresh key, and says it never fits', async () => {
      const storage = new MemoryThrottlerStorage();
      const { guard } = await setup(storage, { ...plan(30), rateLimits: { perMinute: 60, perHour: 1_000, toolCallsPerMinute: 30 } });
      await expect(guard.canActivate(mcp(calls(100)).context)).rejects.toMatchObject({
        code: 'rate_limited',
        message: expect.stringContaining('this JSON-RPC batch counts 100 and is refused whole (a batch counting more than 60 never fits: split it)'),
        details: { window: 'minute', quota_info: { limit: 60, used: 60, remaining: 0 } },
      });
      storage.onApplicationShutdown();
    });

    it('limitKey (the /keys/verify path) still counts one request', async () => {
      const storage = new FakeStorage((w) => ({ blockedIndex: -1, records: w.map(() => rec(1)) }));
      const { guard } = await setup(storage, plan(5));
      await guard.limitKey('tenant-1', 'key-1', false);
      await guard.limitKey('tenant-1', 'key-1', true);
      expect(storage.calls.map((c) => c.map((w) => [w.name, w.hits]))).toEqual([
        [
          ['minute', 1],
          ['hour', 1],
        ],
        [
          ['minute', 1],
          ['tool_call', 1],
          ['hour', 1],
        ],
      ]);
    });
  });

  it('must run after the API-key guard', async () => {
    const { guard } = await setup(new FakeStorage(() => ({ blockedIndex: -1, records: [] })), plan());
    await expect(guard.canActivate(request({ agent: false }).context)).rejects.toThrow('AgentThrottlerGuard must run after APIKeyAuthGuard');
  });
});
