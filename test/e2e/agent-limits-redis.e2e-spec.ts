import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
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
 * eat the hour budget.
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
});
