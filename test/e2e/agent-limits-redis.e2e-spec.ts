import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import Redis from 'ioredis';
import { hitSequentially, LimitWindow } from '../../src/plans/infrastructure/multi-window-limiter';
import { RedisThrottlerStorage } from '../../src/plans/infrastructure/redis-throttler.storage';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';
import { ThrowawayRedis } from '../support/throwaway-redis';

/**
 * Per-key rate limits with Redis (perf issue: "one Redis round trip at most
 * per request for limits"). A throwaway redis-server is watched with MONITOR:
 * every agent request, admitted or refused, costs exactly one command on the
 * limit keys, carrying all of its windows. And a window that refuses a request
 * stops the evaluation: the windows after it (in the order minute → tool_call
 * → hour) do not count that request, so a flood refused per minute does not
 * eat the hour budget. A JSON-RPC batch counts per message (its requests per
 * minute and hour, its tools/call per tool_call), still in that one command,
 * and the script's weights are the library's `increment` called N times.
 * Needs REDIS_URL (like the other Redis suites) and the redis-server binary.
 */
const describeWithRedis = process.env.REDIS_URL ? describe : describe.skip;
if (!process.env.REDIS_URL) {
  process.stdout.write('agent-limits-redis.e2e-spec: skipped, REDIS_URL is unset (needs a real Redis)\n');
}

const PLAN = { id: 'mw', name: 'Multi-window', rate_limits: { per_minute: 4, per_hour: 100, tool_calls_per_minute: 2 }, quotas: { requests_per_month: 1_000, tokens_per_month: 1_000_000 }, max_keys: 10, included_credits: 1_000 };

describeWithRedis('agent rate limits in Redis: one round trip per request, blocked windows stop the walk', () => {
  let t: TestApp;
  let redis: ThrowawayRedis;
  let fake: FakeUpstream;
  let monitorBase: Redis;
  let monitor: Redis;
  let probe: Redis;
  let admin: string;
  let tenant: string;
  /** Every command a client sent (MONITOR, without the ones scripts ran), in order. */
  const seen: string[][] = [];
  let fences = 0;

  beforeAll(async () => {
    redis = await new ThrowawayRedis().start();
    fake = await new FakeUpstream().start();
    const plans = join(process.env.DATA_DIR!, `agent-limits-redis-${Date.now()}.json`);
    writeFileSync(plans, JSON.stringify([PLAN]));
    t = await createTestApp({ REDIS_URL: redis.url, PLANS_FILE: plans });
    tenant = uniqueTenant('mw');
    admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, PLAN.id);
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } })).status).toBe(201);
    probe = new Redis(redis.url);
    monitorBase = new Redis(redis.url);
    monitor = await monitorBase.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args.map(String));
    });
  }, 60_000);

  afterAll(async () => {
    monitor?.disconnect();
    monitorBase?.disconnect();
    probe?.disconnect();
    await t?.close();
    await fake?.stop();
    await redis?.stop();
  });

  const newKey = async () => createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
  const toolCall = (token: string) =>
    t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': token }, body: { arguments: { message: 'x' } } });
  const list = (token: string) => t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': token } });

  /** Index in `seen` right after a marker command that ran after everything sent before it. */
  async function fence(): Promise<number> {
    const marker = `fence-${++fences}`;
    await probe.echo(marker);
    const deadline = Date.now() + 5_000;
    for (;;) {
      const i = seen.findIndex((c) => c[0].toLowerCase() === 'echo' && c[1] === marker);
      if (i >= 0) return i + 1;
      if (Date.now() > deadline) throw new Error(`MONITOR never showed ${marker}`);
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  /** Runs one request; returns its response and the commands it ran on rate-limit keys. */
  async function limitCommands<R>(request: () => Promise<R>): Promise<{ res: R; commands: string[][] }> {
    const from = await fence();
    const res = await request();
    const to = (await fence()) - 1;
    return { res, commands: seen.slice(from, to).filter((c) => c.some((a) => a.includes('tg:rl:'))) };
  }

  const hits = async (window: string, keyId: string) => Number((await probe.get(`{tg:rl:${window}:key:${tenant}:${keyId}:${window}}:hits`)) ?? 0);

  const rpcCall = (i: number) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: `m${i}` } } });
  /** POST /mcp as the review did: no MCP-Protocol-Version (a 2025-03-26 client), for which the SDK transport accepts batches. */
  const mcp = (token: string, body: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': token },
      payload: JSON.stringify(body),
    });

  it('each agent request, admitted or refused, makes exactly one Redis command for its limits', async () => {
    const { id, token } = await newKey();

    const first = await limitCommands(() => toolCall(token));
    expect(first.res.status).toBe(200);
    expect(first.res.headers['x-ratelimit-limit']).toBe('2');
    expect(first.res.headers['x-ratelimit-remaining']).toBe('1');
    expect(first.commands).toHaveLength(1);
    const [script] = first.commands;
    expect(['eval', 'evalsha']).toContain(script[0].toLowerCase());
    // All three windows in the one command, in evaluation order.
    const keys = script.filter((a) => a.startsWith('{tg:rl:') && a.endsWith(':hits'));
    expect(keys).toEqual([`{tg:rl:minute:key:${tenant}:${id}:minute}:hits`, `{tg:rl:tool_call:key:${tenant}:${id}:tool_call}:hits`, `{tg:rl:hour:key:${tenant}:${id}:hour}:hits`]);

    const listing = await limitCommands(() => list(token));
    expect(listing.res.status).toBe(200);
    expect(listing.commands).toHaveLength(1);
    expect(listing.commands[0].filter((a) => a.startsWith('{tg:rl:') && a.endsWith(':hits'))).toHaveLength(2); // no tool_call window

    expect((await toolCall(token)).status).toBe(200);
    const refused = await limitCommands(() => toolCall(token));
    expect(refused.res.status).toBe(429);
    expect(refused.commands).toHaveLength(1);
  });

  it('a request refused by a window is not counted by the windows after it (minute → tool_call → hour)', async () => {
    const { id, token } = await newKey();
    expect((await toolCall(token)).status).toBe(200);
    expect((await toolCall(token)).status).toBe(200);

    // Third tool call: minute counts it (3/4), tool_call refuses it (3/2), hour must not count it.
    const third = await toolCall(token);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'rate_limited', window: 'tool_call', quota_info: { plan: 'mw', limit: 2, used: 2 } });
    expect(third.headers['retry-after']).toBeDefined();
    expect(await hits('minute', id)).toBe(3);
    expect(await hits('tool_call', id)).toBe(3);
    expect(await hits('hour', id)).toBe(2);

    // A listing is not a tool call: minute 4/4 and hour, no tool_call window.
    const ok = await list(token);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-ratelimit-limit']).toBe('4');
    expect(ok.headers['x-ratelimit-remaining']).toBe('0');
    expect(await hits('hour', id)).toBe(3);

    // A flood past the minute window: refused by minute, neither tool_call nor hour count it.
    for (let i = 0; i < 5; i++) {
      const res = i % 2 ? await list(token) : await toolCall(token);
      expect(res.status).toBe(429);
      expect(res.body).toMatchObject({ code: 'rate_limited', window: 'minute', quota_info: { plan: 'mw', limit: 4, used: 4, remaining: 0 } });
      expect(res.headers['x-ratelimit-limit']).toBe('4');
      expect(res.headers['x-ratelimit-remaining']).toBe('0');
    }
    expect(await hits('minute', id)).toBe(9);
    expect(await hits('tool_call', id)).toBe(3);
    expect(await hits('hour', id)).toBe(3);
  });
  it("the review's batch of 100 tools/call is refused whole (429), in one Redis command, and counted only up to the refusing window", async () => {
    const { id, token } = await newKey();
    const before = fake.callCount('echo');
    const batch = Array.from({ length: 100 }, (_, i) => rpcCall(i));
    const { res, commands } = await limitCommands(() => mcp(token, batch));
    expect(res.statusCode).toBe(429);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ code: 'rate_limited', window: 'minute', quota_info: { plan: 'mw', limit: 4, used: 4, remaining: 0 } });
    expect(body.detail).toContain('this JSON-RPC batch counts 100 and is refused whole');
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.headers['x-ratelimit-remaining']).toBe('0');
    expect(fake.callCount('echo')).toBe(before);
    expect(commands).toHaveLength(1);
    expect(await hits('minute', id)).toBe(100);
    expect(await hits('tool_call', id)).toBe(0);
    expect(await hits('hour', id)).toBe(0);
  });

  it('a batch counts per message in one Redis command: fits → Remaining drops by N; does not fit → 429 whole, nothing served', async () => {
    const { id, token } = await newKey();
    const before = fake.callCount('echo');

    // 3 tool calls against tool_call 2 (minute 4 has room): refused by tool_call, whole.
    const over = await limitCommands(() => mcp(token, [rpcCall(0), rpcCall(1), rpcCall(2)]));
    expect(over.res.statusCode).toBe(429);
    expect(JSON.parse(over.res.body)).toMatchObject({ code: 'rate_limited', window: 'tool_call', quota_info: { limit: 2, used: 2 } });
    expect(over.commands).toHaveLength(1);
    expect(fake.callCount('echo')).toBe(before);
    expect([await hits('minute', id), await hits('tool_call', id), await hits('hour', id)]).toEqual([3, 3, 0]);

    // Another key: a batch of one tool call and one listing fits (minute 2/4, tool_call 1/2, hour 2/100).
    const other = await newKey();
    const fits = await limitCommands(() => mcp(other.token, [rpcCall(0), { jsonrpc: '2.0', id: 9, method: 'tools/list' }]));
    expect(fits.res.statusCode).toBe(200);
    const answers = JSON.parse(fits.res.body) as Array<{ id: number; result?: { isError?: boolean } }>;
    expect(answers.filter((m) => m.result && !m.result.isError).map((m) => m.id).sort()).toEqual([1, 9]);
    expect(fits.commands).toHaveLength(1);
    expect(fits.res.headers['x-ratelimit-limit']).toBe('2');
    expect(fits.res.headers['x-ratelimit-remaining']).toBe('1');
    expect(fake.callCount('echo')).toBe(before + 1);
    expect([await hits('minute', other.id), await hits('tool_call', other.id), await hits('hour', other.id)]).toEqual([2, 1, 2]);
  });
});

describeWithRedis('rate-limit Lua script with weights: the library increment called N times per window', () => {
  let redis: ThrowawayRedis;
  let client: Redis;
  let ours: RedisThrottlerStorage;
  let library: ThrottlerStorageRedisService;

  beforeAll(async () => {
    redis = await new ThrowawayRedis().start();
    client = new Redis(redis.url);
    ours = new RedisThrottlerStorage(client);
    library = new ThrottlerStorageRedisService(client);
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  const WINDOWS: Array<Omit<LimitWindow, 'key' | 'hits'>> = [
    { name: 'minute', ttlMs: 60_000, limit: 10, blockDurationMs: 60_000 },
    { name: 'tool_call', ttlMs: 60_000, limit: 5, blockDurationMs: 60_000 },
    { name: 'hour', ttlMs: 3_600_000, limit: 40, blockDurationMs: 3_600_000 },
  ];
  const redisKeys = (w: LimitWindow) => [`{${w.key}:${w.name}}:hits`, `{${w.key}:${w.name}}:blocked`];
  /** The windows of a request under `prefix`, weighing `weights` (0: the window is left out, as tool_call for a request without tool calls). */
  const at = (prefix: string, weights: number[], specs = WINDOWS): LimitWindow[] =>
    specs.map((w, i) => ({ ...w, key: `${prefix}:${w.name}`, hits: weights[i] })).filter((w) => w.hits > 0);

  async function state(windows: LimitWindow[]): Promise<Array<[string | null, boolean]>> {
    const out: Array<[string | null, boolean]> = [];
    for (const w of windows) for (const k of redisKeys(w)) out.push([await client.get(k), (await client.pttl(k)) > 0]);
    return out;
  }

  /** One request through the script (prefix a) and through the library, N increments per window (prefix b): same records, same keys. */
  async function step(test: string, weights: number[], specs = WINDOWS) {
    const a = at(`${test}:a`, weights, specs);
    const b = at(`${test}:b`, weights, specs);
    const mine = await ours.hitAll(a);
    expect(mine).toEqual(await hitSequentially(library, b));
    const all = (p: string) => at(p, [1, 1, 1], specs);
    expect(await state(all(`${test}:a`))).toEqual(await state(all(`${test}:b`)));
    return mine;
  }

  it('weight 1 is one INCR of the library; weights count N, block past the limit and stop the walk, as N increments do', async () => {
    const outcomes: number[] = [];
    // [minute, tool_call, hour] weights; tool_call 0 = a request without tool calls (no such window).
    const schedule = [
      [1, 1, 1],
      [3, 2, 3], // minute 4, tool_call 3, hour 4
      [2, 2, 2], // tool_call 5: exactly full, passes
      [1, 0, 1], // minute 7
      [2, 1, 2], // tool_call 6 > 5: refused, hour not counted
      [3, 0, 3], // minute 12 > 10: refused
      [1, 1, 1], // minute blocked already
    ];
    for (const weights of schedule) outcomes.push((await step('sched', weights)).blockedIndex);
    expect(outcomes).toEqual([-1, -1, -1, -1, 1, 0, 0]);
  });

  it('a weight above a limit is refused on a fresh window', async () => {
    expect((await step('big', [11, 1, 11])).blockedIndex).toBe(0);
    expect((await step('big2', [6, 6, 6])).blockedIndex).toBe(1);
  });

  it('a block key without a TTL restarts the window with the first hit; the others count after it, as the library does', async () => {
    for (const [test, weight, blocked] of [
      ['nottl1', 1, -1],
      ['nottl3', 3, -1],
      ['nottl5', 5, -1],
      ['nottl6', 6, 0],
    ] as const) {
      await step(test, [0, 2, 0]);
      for (const p of ['a', 'b']) await client.set(`{${test}:${p}:tool_call:tool_call}:blocked`, '1');
      const r = await step(test, [0, weight, 0]);
      expect(r.blockedIndex).toBe(blocked);
      expect(r.records[0].totalHits).toBe(weight);
    }
  });

  it('on a pseudo-random schedule of weights, call after call', async () => {
    let seed = 0x2f6b_4a1d; // xorshift32: the same schedule every run
    const next = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    // Roomier limits than WINDOWS, so the schedule runs through admissions and refusals by each window.
    const specs = [
      { name: 'minute', ttlMs: 60_000, limit: 120, blockDurationMs: 60_000 },
      { name: 'tool_call', ttlMs: 60_000, limit: 30, blockDurationMs: 60_000 },
      { name: 'hour', ttlMs: 3_600_000, limit: 40, blockDurationMs: 3_600_000 },
    ];
    let minuteHits = 0;
    const refusedBy = new Set<string>();
    let admitted = 0;
    for (let i = 0; i < 60; i++) {
      const weights = [1 + next(4), next(4), 1 + next(4)];
      minuteHits += weights[0];
      const r = await step('rand', weights, specs);
      if (r.blockedIndex === -1) admitted++;
      else refusedBy.add(at('rand:a', weights, specs)[r.blockedIndex].name);
    }
    // The first window counts every hit of every request (within its minute, refused ones too).
    expect(Number(await client.get('{rand:a:minute:minute}:hits'))).toBe(minuteHits);
    expect(admitted).toBeGreaterThan(10);
    expect([...refusedBy].sort()).toEqual(['hour', 'minute', 'tool_call']);
  });

  it('costs one Redis command per call, whatever the weights', async () => {
    const spy = jest.spyOn(client, 'sendCommand');
    try {
      await ours.hitAll(at('rtt', [1, 1, 1]));
      spy.mockClear();
      await ours.hitAll(at('rtt', [7, 3, 7]));
      expect(spy.mock.calls.map(([c]) => c.name)).toEqual(['evalsha']);
    } finally {
      spy.mockRestore();
    }
  });
});
