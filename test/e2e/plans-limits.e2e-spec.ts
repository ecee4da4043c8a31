import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as PgClient } from 'pg';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../../src/config/app-config';
import { CallAdmission } from '../../src/plans/application/call-admission.service';
import { SubscriptionsService } from '../../src/plans/application/subscriptions.service';
import { AdmissionStore } from '../../src/plans/domain/billing.repositories';
import { monthWindow } from '../../src/plans/domain/plan';
import { UnitOfWork } from '../../src/shared/domain/unit-of-work';
import { PostgresAdmissionStore } from '../../src/plans/infrastructure/typeorm-billing.repositories';
import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, writePlansFile } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

/** API.md's signature, computed here independently of the implementation. */
function signPayload(secret: string, timestamp: number, raw: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`;
}

const ERROR_META = 'io.tollgate/error';
const BUDGET_META = 'io.tollgate/budget';
const WEBHOOK_SECRET = 'whsec-plans-limits-0123456789';

/** Small plans so limits are reachable in a test (PLANS_FILE adds them to the built-in ones). */
const FILE_PLANS = [
  { id: 'tiny', name: 'Tiny', rate_limits: { per_minute: 5, per_hour: 100 }, quotas: { requests_per_month: 1_000, tokens_per_month: 10_000_000 }, max_keys: 10, included_credits: 1_000 },
  { id: 'quota50', name: 'Quota 50', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 50, tokens_per_month: 1_000_000_000 }, max_keys: 10, included_credits: 1_000 },
  { id: 'quota3', name: 'Quota 3', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 3, tokens_per_month: 1_000_000_000 }, max_keys: 10, included_credits: 1_000 },
  { id: 'credits10', name: 'Credits 10', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 1_000, tokens_per_month: 1_000_000_000 }, max_keys: 10, included_credits: 10 },
  { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 1_000, per_hour: 10_000 }, quotas: { requests_per_month: 10_000, tokens_per_month: 1_000_000_000 }, max_keys: 10, included_credits: 1_000 },
];

interface Ledger {
  type: 'grant' | 'purchase' | 'charge' | 'refund';
  amount: number;
  balance_after: number;
  tool: string | null;
  key_id: string | null;
}

/**
 * P1–P4 and M6 end to end: plans, per-key rate limits (X-RateLimit-*, 429),
 * the brute-force brake, exact monthly quotas and credits under concurrency,
 * refunds, prices, the budget in _meta, fallback of past_due plans.
 * Runs with or without REDIS_URL (throttler storage in Redis or in process).
 */
describe('Plans, rate limits, quotas and credits (e2e)', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let baseUrl: string;
  let plansFile: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    plansFile = writePlansFile(FILE_PLANS);
    fake = await new FakeUpstream().start();
    t = await createTestApp({ PLANS_FILE: plansFile, BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await t?.close();
    await fake?.stop();
  });

  /** A tenant on `plan` with the fake upstream registered and a key for `scope`. */
  async function tenantOn(plan: string, scope: string[] = ['fake__*']) {
    const tenant = uniqueTenant(plan);
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, plan);
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: scope } });
    return { tenant, admin, key: key.token, keyId: key.id };
  }

  function restCall(key: string, name = 'fake__echo', args: Record<string, unknown> = { message: 'hi' }) {
    return t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key }, body: { arguments: args } });
  }

  async function balance(admin: string): Promise<{ balance: number; plan: string; subscribed_plan: string; subscription_status: string }> {
    const res = await t.request({ method: 'GET', url: '/api/v1/credits', token: admin });
    expect(res.status).toBe(200);
    return res.body;
  }

  /** The ledger, oldest first. */
  async function ledger(admin: string): Promise<Ledger[]> {
    const res = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: admin });
    expect(res.status).toBe(200);
    return [...res.body.data].reverse();
  }

  async function quotaRequests(tenant: string): Promise<number> {
    const rows = await t.db.query(`SELECT requests FROM quota_counters WHERE tenant_id = $1`, [tenant]);
    return rows.reduce((n: number, r: { requests: string }) => n + Number(r.requests), 0);
  }

  /** Every row's balance_after is the previous one plus its amount, starting from 0, ending at the balance. */
  function expectConsistentChain(rows: Ledger[], finalBalance: number) {
    let running = 0;
    for (const r of rows) {
      running += r.amount;
      expect(r.balance_after).toBe(running);
      expect(r.balance_after).toBeGreaterThanOrEqual(0);
    }
    expect(running).toBe(finalBalance);
  }

  async function mcpPost(key: string, body: unknown) {
    const res = await fetch(`${baseUrl}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', 'x-api-key': key },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json };
  }

  async function connect(key: string): Promise<Client> {
    const client = new Client({ name: 'e2e-plans', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': key } } }));
    clients.push(client);
    return client;
  }

  function signed(event: unknown, at = Math.floor(Date.now() / 1000)) {
    const raw = JSON.stringify(event);
    return { raw, signature: signPayload(WEBHOOK_SECRET, at, raw) };
  }

  function postWebhook(raw: string, signature: string) {
    return t.request({ method: 'POST', url: '/api/v1/billing/webhook', rawBody: raw, headers: { 'content-type': 'application/json', 'tollgate-signature': signature } });
  }

  function expectQuotaInfo(info: any, plan: string, limit: number, used: number) {
    expect(info).toEqual({ plan, limit, used, remaining: Math.max(0, limit - used), reset_at: expect.any(String) });
    expect(Number.isNaN(Date.parse(info.reset_at))).toBe(false);
  }

  it('GET /api/v1/plans (no credentials) lists the built-in plans and the PLANS_FILE ones with their limits', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/plans' });
    expect(res.status).toBe(200);
    const ids = res.body.data.map((p: { id: string }) => p.id);
    expect(ids).toEqual(expect.arrayContaining(['free', 'pro', 'enterprise', 'tiny', 'quota50', 'credits10']));
    const tiny = res.body.data.find((p: { id: string }) => p.id === 'tiny');
    expect(tiny).toEqual({
      id: 'tiny',
      name: 'Tiny',
      rate_limits: { per_minute: 5, per_hour: 100 },
      quotas: { requests_per_month: 1_000, tokens_per_month: 10_000_000 },
      max_keys: 10,
      included_credits: 1_000,
      max_key_lifetime_days: null,
    });
    const free = res.body.data.find((p: { id: string }) => p.id === 'free');
    expect(free.rate_limits.per_minute).toBeGreaterThan(0);
    expect(free.quotas.requests_per_month).toBeGreaterThan(0);
  });

  it('a tiny-plan key: X-RateLimit-* on every response with Remaining decreasing by one, then 429 rate_limited with Retry-After and quota_info', async () => {
    const { key } = await tenantOn('tiny');
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key } });
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('5');
      const reset = Number(res.headers['x-ratelimit-reset']);
      expect(Number.isInteger(reset)).toBe(true);
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
      remaining.push(Number(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);

    const before = Date.now();
    const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key } });
    const after = Date.now();
    expect(res.status).toBe(429);
    expect(String(res.headers['content-type'])).toContain('application/problem+json');
    expect(res.body.code).toBe('rate_limited');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expectQuotaInfo(res.body.quota_info, 'tiny', 5, 5);
    const resetAt = Date.parse(res.body.quota_info.reset_at);
    expect(resetAt).toBeGreaterThan(before);
    // The block (60 s) starts while the request runs: between `before` and `after`, however slow the host.
    expect(resetAt).toBeLessThanOrEqual(after + 60_000);

    // Tool calls are refused by the same limit (no upstream call, no charge).
    const calls = fake.callCount('echo');
    const call = await restCall(key);
    expect(call.status).toBe(429);
    expect(call.body.code).toBe('rate_limited');
    expect(fake.callCount('echo')).toBe(calls);
  });

  it('the limit is per key: another key of the same tenant still has its full allowance', async () => {
    const { admin, key } = await tenantOn('tiny');
    for (let i = 0; i < 6; i++) await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key } });
    const other = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    const res = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': other.token } });
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-remaining']).toBe('4');
  });

  it('MCP over HTTP: the same headers on each answer, then HTTP 429 with Retry-After and quota_info', async () => {
    const { key } = await tenantOn('tiny');
    for (let i = 0; i < 5; i++) {
      const res = await mcpPost(key, { jsonrpc: '2.0', id: i + 1, method: 'tools/list' });
      expect(res.status).toBe(200);
      expect(res.json.result.tools.length).toBe(6);
      expect(res.headers.get('x-ratelimit-limit')).toBe('5');
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
      expect(res.headers.get('x-ratelimit-reset')).toMatch(/^\d+$/);
    }
    const res = await mcpPost(key, { jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'fake__echo', arguments: { message: 'flood' } } });
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(res.json.code).toBe('rate_limited');
    expectQuotaInfo(res.json.quota_info, 'tiny', 5, 5);
  });

  it('brute force: 30 bad keys from one IP are 401, the 31st is 429 with Retry-After; another IP is still 401', async () => {
    const ip = `10.${randomBytes(1)[0]}.${randomBytes(1)[0]}.${1 + (randomBytes(1)[0] % 250)}`;
    const attempt = (from: string) =>
      t.app.inject({ method: 'GET', url: '/api/v1/mcp/tools', remoteAddress: from, headers: { 'x-api-key': `tg_live_${randomBytes(16).toString('hex')}` } });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await attempt(ip)).statusCode);
    expect(statuses).toEqual(Array(30).fill(401));
    const last = await attempt(ip);
    expect(last.statusCode).toBe(429);
    expect(JSON.parse(last.body).code).toBe('rate_limited');
    expect(Number(last.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(last.headers['retry-after'])).toBeLessThanOrEqual(60);
    const elsewhere = await attempt(`192.0.2.${1 + (randomBytes(1)[0] % 250)}`);
    expect(elsewhere.statusCode).toBe(401);
  });

  it('quota: 60 concurrent calls against requests_per_month 50 admit exactly 50; 10 × 429 quota_exceeded with quota_info and upgrade_hint', async () => {
    const { tenant, admin, keyId, key } = await tenantOn('quota50');
    const upstreamBefore = fake.callCount('echo');
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => restCall(key, 'fake__echo', { message: `q${i}` })));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(ok.length).toBe(50);
    expect(refused.length).toBe(10);
    const resetAt = monthWindow(new Date()).end.toISOString();
    for (const r of refused) {
      expect(r.body.code).toBe('quota_exceeded');
      expect(r.body.quota_info).toEqual({ plan: 'quota50', limit: 50, used: 50, remaining: 0, reset_at: resetAt });
      expect(typeof r.body.upgrade_hint).toBe('string');
      expect(r.body.upgrade_hint.length).toBeGreaterThan(0);
      // API.md: every 429 carries Retry-After (here: until the month resets).
      const retryAfter = Number(r.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil((Date.parse(resetAt) - Date.now()) / 1000) + 5);
    }
    expect(fake.callCount('echo') - upstreamBefore).toBe(50);
    expect(await quotaRequests(tenant)).toBe(50);
    // Usage counters equal the admitted calls exactly.
    const usage = await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyId}/usage`, token: admin });
    expect(usage.status).toBe(200);
    expect(usage.body.requests_count).toBe(50);
    expect(usage.body.credits_used).toBe(50);
    // Refused calls cost nothing: 1000 included, 50 charged.
    expect((await balance(admin)).balance).toBe(950);
  });

  it('credits: 10 credits at price 1, 15 concurrent calls → exactly 10 succeed, 5 × 402 insufficient_credits {balance 0, required 1}; ledger consistent', async () => {
    const { tenant, admin, key, keyId } = await tenantOn('credits10');
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) => restCall(key, 'fake__echo', { message: `c${i}` })));
    expect(results.filter((r) => r.status === 200).length).toBe(10);
    const refused = results.filter((r) => r.status === 402);
    expect(refused.length).toBe(5);
    for (const r of refused) {
      expect(String(r.headers['content-type'])).toContain('application/problem+json');
      expect(r.body.code).toBe('insufficient_credits');
      expect(r.body.balance).toBe(0);
      expect(r.body.required).toBe(1);
    }
    expect((await balance(admin)).balance).toBe(0);
    const rows = await ledger(admin);
    expect(rows.filter((r) => r.type === 'grant')).toEqual([expect.objectContaining({ type: 'grant', amount: 10 })]);
    const charges = rows.filter((r) => r.type === 'charge');
    expect(charges.length).toBe(10);
    for (const c of charges) expect(c).toMatchObject({ amount: -1, tool: 'fake__echo', key_id: keyId });
    expect(rows.length).toBe(11);
    expect(rows[0].type).toBe('grant');
    expectConsistentChain(rows, 0);
    // A refused call takes nothing from the quota either.
    expect(await quotaRequests(tenant)).toBe(10);
    // ADMISSION_COMMIT defaults to async: PostgreSQL committed these admissions with synchronous_commit off.
    expect((t.app.get(AdmissionStore) as PostgresAdmissionStore).lastCommitMode).toBe('off');
  });

  it('ADMISSION_COMMIT=sync: the admission commits with synchronous_commit on, and the session keeps its own setting', async () => {
    const { tenant, keyId } = await tenantOn('credits10');
    const ds = t.app.get(DataSource);
    const store = new PostgresAdmissionStore(ds, { admissionCommit: 'sync' } as AppConfig);
    const period = monthWindow(new Date()).start;
    const admitted = await store.admit({ tenantId: tenant, period, maxRequests: 100, maxTokens: 1_000_000, price: 1, keyId, tool: 'fake__echo', grant: 10, grantReference: `grant:${tenant}`, keyCap: null });
    expect(admitted).toMatchObject({ outcome: 'admitted', requests: 1, balance: 9 });
    expect(store.lastCommitMode).toBe('on');
    // set_config(…, true) lasts one transaction: connections of the pool keep the server default.
    expect((await ds.query(`SHOW synchronous_commit`))[0].synchronous_commit).toBe('on');
  });

  it('MCP client view of a quota refusal: an isError result that says so in words, with the code and quota_info in _meta', async () => {
    const { key } = await tenantOn('quota3');
    const client = await connect(key);
    for (let i = 0; i < 3; i++) {
      const ok = await client.callTool({ name: 'fake__echo', arguments: { message: `m${i}` } });
      expect(ok.isError).toBeFalsy();
    }
    const refused = await client.callTool({ name: 'fake__echo', arguments: { message: 'one too many' } });
    expect(refused.isError).toBe(true);
    const text = (refused.content as { type: string; text: string }[]).map((c) => c.text).join(' ');
    expect(text).toMatch(/quota/i);
    expect(text).toContain(monthWindow(new Date()).end.toISOString());
    const meta = (refused._meta as Record<string, any>)[ERROR_META];
    expect(meta.code).toBe('quota_exceeded');
    expectQuotaInfo(meta.quota_info, 'quota3', 3, 3);
    expect(typeof meta.upgrade_hint).toBe('string');
  });

  it('MCP client view of a credit refusal: an isError result about credits with {balance, required} in _meta', async () => {
    const { admin, key } = await tenantOn('credits10');
    const price = await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: 5 } });
    expect(price.status).toBe(200);
    expect(price.body.tools).toEqual({ fake__echo: 5 });
    const client = await connect(key);
    expect((await client.callTool({ name: 'fake__echo', arguments: { message: 'a' } })).isError).toBeFalsy();
    expect((await client.callTool({ name: 'fake__echo', arguments: { message: 'b' } })).isError).toBeFalsy();
    const refused = await client.callTool({ name: 'fake__echo', arguments: { message: 'c' } });
    expect(refused.isError).toBe(true);
    const text = (refused.content as { type: string; text: string }[]).map((c) => c.text).join(' ');
    expect(text).toMatch(/credits/i);
    expect((refused._meta as Record<string, any>)[ERROR_META]).toMatchObject({ code: 'insufficient_credits', balance: 0, required: 5 });
    expect((await balance(admin)).balance).toBe(0);
  });

  it('a denied (out of scope) call leaves balance, quota and ledger as they were', async () => {
    const { tenant, admin, key } = await tenantOn('roomy', ['fake__echo']);
    expect((await restCall(key)).status).toBe(200);
    const before = { balance: (await balance(admin)).balance, quota: await quotaRequests(tenant), ledger: (await ledger(admin)).length };
    expect(before).toEqual({ balance: 999, quota: 1, ledger: 2 });

    const calls = fake.callCount('slow');
    const denied = await restCall(key, 'fake__slow', { ms: 1 });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('forbidden_resource');
    const client = await connect(key);
    await expect(client.callTool({ name: 'fake__slow', arguments: { ms: 1 } })).rejects.toThrow();
    expect(fake.callCount('slow')).toBe(calls);

    expect({ balance: (await balance(admin)).balance, quota: await quotaRequests(tenant), ledger: (await ledger(admin)).length }).toEqual(before);
  });

  it('an upstream failure (upstream stopped) is refunded in the ledger and released from the quota', async () => {
    const { tenant, admin, key, keyId } = await tenantOn('roomy');
    expect((await restCall(key)).status).toBe(200);
    expect((await balance(admin)).balance).toBe(999);
    expect(await quotaRequests(tenant)).toBe(1);

    await fake.stop();
    try {
      const failed = await restCall(key);
      expect(failed.status).toBe(502);
      expect(failed.body.code).toBe('upstream_error');
      const client = await connect(key);
      const viaMcp = await client.callTool({ name: 'fake__echo', arguments: { message: 'down' } });
      expect(viaMcp.isError).toBe(true);
      expect((viaMcp._meta as Record<string, any>)[ERROR_META].code).toBe('upstream_error');
    } finally {
      await fake.start();
    }

    expect((await balance(admin)).balance).toBe(999);
    expect(await quotaRequests(tenant)).toBe(1);
    const rows = await ledger(admin);
    // grant, charge (served), then charge + refund twice (REST and MCP failures).
    expect(rows.map((r) => `${r.type}:${r.amount}`)).toEqual(['grant:1000', 'charge:-1', 'charge:-1', 'refund:1', 'charge:-1', 'refund:1']);
    expect(rows.filter((r) => r.type === 'refund').every((r) => r.key_id === keyId && r.tool === 'fake__echo')).toBe(true);
    expectConsistentChain(rows, 999);
    // Usage counts only the served call.
    const usage = await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyId}/usage`, token: admin });
    expect(usage.body.requests_count).toBe(1);
  });

  it('the month\'s included credits follow the plan up: past_due grants free\'s, paying again tops up to the plan\'s, once', async () => {
    const tenant = uniqueTenant('grant');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'roomy', 'past_due');
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url } });
    expect(reg.status).toBe(201);
    const key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
    expect((await restCall(key)).status).toBe(200);
    const month = new Date().toISOString().slice(0, 7);
    expect((await ledger(admin)).map((r) => `${r.type}:${r.amount}`)).toEqual(['grant:100', 'charge:-1']);
    await setPlan(t, tenant, 'roomy', 'active');
    // Down and up again within the month grants nothing more: roomy's 1,000 are all given.
    await setPlan(t, tenant, 'free');
    await setPlan(t, tenant, 'roomy');
    expect((await restCall(key)).status).toBe(200);
    const rows = await ledger(admin);
    expect(rows.map((r) => `${r.type}:${r.amount}`)).toEqual(['grant:100', 'charge:-1', 'grant:900', 'charge:-1']);
    expectConsistentChain(rows, 998);
    const grants = await t.db.query(`SELECT reference FROM credit_transactions WHERE tenant_id = $1 AND type = 'grant' ORDER BY seq`, [tenant]);
    expect(grants.map((g: { reference: string }) => g.reference)).toEqual([`monthly:${month}:free`, `monthly:${month}:roomy`]);
    const audits = await t.db.query(`SELECT metadata FROM audit_events WHERE tenant_id = $1 AND action = 'credits.granted' ORDER BY seq`, [tenant]);
    expect(audits.map((a: { metadata: { amount: number; reason: string } }) => [a.metadata.amount, a.metadata.reason])).toEqual([
      [100, 'plan_changed'],
      [900, 'plan_raised'],
    ]);
  });

  it('a plan changed by the billing webhook is announced after its commit: a read during the transaction does not keep the old plan', async () => {
    const tenant = uniqueTenant('announce');
    await setPlan(t, tenant, 'free');
    const subs = t.app.get(SubscriptionsService);
    const original = subs.change.bind(subs);
    // A request of the tenant reads (and caches) its plan while the webhook's transaction is still open.
    subs.change = async (...args: Parameters<SubscriptionsService['change']>) => {
      await original(...args);
      expect((await subs.planFor(tenant)).plan.id).toBe('free');
    };
    try {
      const { raw, signature } = signed({ id: `evt_${randomBytes(6).toString('hex')}`, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'roomy', status: 'active' } });
      expect((await postWebhook(raw, signature)).body).toMatchObject({ status: 'processed' });
    } finally {
      subs.change = original;
    }
    expect((await subs.planFor(tenant)).plan.id).toBe('roomy');
  });

  it('a plan change and an admission of the same tenant in flight do not deadlock (the tenant row is locked FOR NO KEY UPDATE)', async () => {
    const tenant = uniqueTenant('deadlock');
    await setPlan(t, tenant, 'free');
    const key = randomUUID();
    await t.app.get(CallAdmission).admit(tenant, key, 'fake__echo', 1_000);
    const month = monthWindow(new Date()).start.toISOString().slice(0, 10);
    const url = process.env.DATABASE_URL;
    const [holder, admitter, watcher] = [0, 1, 2].map(() => new PgClient({ connectionString: url }));
    await Promise.all([holder.connect(), admitter.connect(), watcher.connect()]);
    try {
      // The admission takes the quota row and the credit account, then waits on the key's spend row...
      await holder.query('BEGIN');
      await holder.query(`SELECT * FROM key_spend WHERE key_id = $1 AND period = $2 FOR UPDATE`, [key, month]);
      const pid = (await admitter.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const admitted = admitter
        .query(
          `SELECT * FROM tollgate_admit_many($1, $2::date, ARRAY[1000000]::bigint[], ARRAY[1000000000]::bigint[], ARRAY[1]::bigint[], ARRAY[$3]::uuid[],
             ARRAY['fake__echo'], ARRAY[0]::bigint[], ARRAY['r']::text[], ARRAY[$4]::uuid[], ARRAY[$5]::uuid[], ARRAY[1000]::bigint[])`,
          [tenant, month, key, randomUUID(), randomUUID()],
        )
        .then(() => 'ok', (e: Error) => e.message);
      for (let i = 0; i < 200; i++) {
        const r = await watcher.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
        if (r.rows[0]?.wait_event_type === 'Lock') break;
        await new Promise((res) => setTimeout(res, 10));
      }
      // ...while a plan change locks the tenant row and waits for the credit account (the month's grant).
      const changed = t.app.get(SubscriptionsService).change(tenant, 'roomy', 'active', { type: 'system', id: 'test' }).then(() => 'ok', (e: Error) => e.message);
      await new Promise((res) => setTimeout(res, 300));
      await holder.query('COMMIT');
      // The admission's ledger insert checks its foreign key to the tenant row: FOR UPDATE there was a deadlock.
      expect(await Promise.all([admitted, changed])).toEqual(['ok', 'ok']);
    } finally {
      await Promise.all([holder.end(), admitter.end(), watcher.end()]);
    }
  });

  it('a plan change commits with its grant: a call that read the old plan before it grants nothing more (no lost allowance)', async () => {
    const tenant = uniqueTenant('stale');
    await setPlan(t, tenant, 'free');
    const subs = t.app.get(SubscriptionsService);
    // As the billing webhook does: the change inside an outer transaction; a request reads the plan meanwhile.
    await t.app.get(UnitOfWork).run(async (tx) => {
      await subs.change(tenant, 'roomy', 'active', { type: 'system', id: 'test' }, undefined, 'evt_stale', tx);
      expect((await subs.planFor(tenant)).plan.id).toBe('free');
    });
    const admitted = await t.app.get(CallAdmission).admit(tenant, randomUUID(), 'fake__echo');
    expect(admitted.plan.id).toBe('free'); // the stale read
    const grants = await t.db.query(`SELECT amount::int AS amount FROM credit_transactions WHERE tenant_id = $1 AND type = 'grant' ORDER BY seq`, [tenant]);
    expect(grants.reduce((n: number, g: { amount: number }) => n + g.amount, 0)).toBe(1_000);
  });

  it('a plan change before the month\'s first call grants the new plan\'s allowance at once; the first call grants nothing more', async () => {
    const { tenant, admin, key } = await tenantOn('credits10');
    await setPlan(t, tenant, 'roomy');
    const month = new Date().toISOString().slice(0, 7);
    // tenantOn's own setPlan granted credits10's 10; roomy tops it up to 1,000.
    expect((await ledger(admin)).map((r) => `${r.type}:${r.amount}`)).toEqual(['grant:10', 'grant:990']);
    expect((await restCall(key)).status).toBe(200);
    expect((await ledger(admin)).map((r) => `${r.type}:${r.amount}`)).toEqual(['grant:10', 'grant:990', 'charge:-1']);
    const grants = await t.db.query(`SELECT reference FROM credit_transactions WHERE tenant_id = $1 AND type = 'grant' ORDER BY seq`, [tenant]);
    expect(grants.map((g: { reference: string }) => g.reference)).toEqual([`monthly:${month}:credits10`, `monthly:${month}:roomy`]);
  });

  it('a first call that costs more than the monthly grant is refused (402) but the grant stays: GET /credits and the 402 agree', async () => {
    const { tenant, admin, key } = await tenantOn('credits10');
    expect((await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: 25 } })).status).toBe(200);
    const refused = await restCall(key);
    expect(refused.status).toBe(402);
    expect(refused.body).toMatchObject({ code: 'insufficient_credits', balance: 10, required: 25 });
    expect((await balance(admin)).balance).toBe(10);
    expect((await ledger(admin)).map((r) => [r.type, r.amount, r.balance_after])).toEqual([['grant', 10, 10]]);
    expect(await quotaRequests(tenant)).toBe(0);
  });

  it('PUT /credits/prices/fake__echo {price: 3} → the next call charges 3; other tools keep the default; null restores it', async () => {
    const { tenant, admin, key } = await tenantOn('roomy');
    expect((await restCall(key)).status).toBe(200);
    const put = await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: 3 } });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ default: 1, tools: { fake__echo: 3 } });
    const prices = await t.request({ method: 'GET', url: '/api/v1/credits/prices', token: admin });
    expect(prices.body).toEqual({ default: 1, tools: { fake__echo: 3 } });

    expect((await restCall(key)).status).toBe(200);
    let rows = await ledger(admin);
    expect(rows[rows.length - 1]).toMatchObject({ type: 'charge', amount: -3, tool: 'fake__echo', balance_after: 1000 - 1 - 3 });
    expect((await restCall(key, 'fake__fail', {})).status).toBe(200);
    rows = await ledger(admin);
    expect(rows[rows.length - 1]).toMatchObject({ type: 'charge', amount: -1, tool: 'fake__fail' });

    const bad = await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: -1 } });
    expect(bad.status).toBe(422);
    const dev = managementToken({ tenantId: tenant, sub: 'dev-1', roles: ['developer'] });
    expect((await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: dev, body: { price: 0 } })).status).toBe(403);

    const reset = await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: null } });
    expect(reset.body).toEqual({ default: 1, tools: {} });
    expect((await restCall(key)).status).toBe(200);
    rows = await ledger(admin);
    expect(rows[rows.length - 1]).toMatchObject({ type: 'charge', amount: -1, tool: 'fake__echo' });
    expectConsistentChain(rows, (await balance(admin)).balance);
  });

  it("_meta['io.tollgate/budget'] on REST and MCP results: requests, tokens and credits left decrease call by call", async () => {
    const { admin, key } = await tenantOn('roomy');
    await t.request({ method: 'PUT', url: '/api/v1/credits/prices/fake__echo', token: admin, body: { price: 2 } });
    const buffer = t.app.get(UsageBuffer);
    const first = await restCall(key);
    expect(first.status).toBe(200);
    const b1 = first.body._meta[BUDGET_META];
    expect(b1).toEqual({
      plan: 'roomy',
      requests_remaining: 10_000 - 1,
      tokens_remaining: expect.any(Number),
      credits_remaining: 1_000 - 2,
      reset_at: monthWindow(new Date()).end.toISOString(),
    });
    expect(b1.tokens_remaining).toBeLessThan(1_000_000_000);
    await buffer.flush();

    const client = await connect(key);
    const second = await client.callTool({ name: 'fake__echo', arguments: { message: 'hi' } });
    const b2 = (second._meta as Record<string, any>)[BUDGET_META];
    expect(b2.plan).toBe('roomy');
    expect(b2.requests_remaining).toBe(b1.requests_remaining - 1);
    expect(b2.credits_remaining).toBe(b1.credits_remaining - 2);
    expect(b2.tokens_remaining).toBeLessThan(b1.tokens_remaining);
    expect((await balance(admin)).balance).toBe(b2.credits_remaining);
  });

  it('past_due and canceled subscriptions fall back to the free plan limits, never to unlimited', async () => {
    const { tenant, admin, key } = await tenantOn('pro');
    const plans = (await t.request({ method: 'GET', url: '/api/v1/plans' })).body.data as any[];
    const free = plans.find((p) => p.id === 'free');
    const pro = plans.find((p) => p.id === 'pro');
    // A tool call shows its tightest window: the plan's tool-call window when it has one.
    const callLimit = (p: any) => p.rate_limits.tool_calls_per_minute ?? p.rate_limits.per_minute;
    expect(callLimit(free)).not.toBe(callLimit(pro));

    const active = await restCall(key);
    expect(active.headers['x-ratelimit-limit']).toBe(String(callLimit(pro)));
    expect(active.body._meta[BUDGET_META].plan).toBe('pro');

    for (const status of ['past_due', 'canceled'] as const) {
      await setPlan(t, tenant, 'pro', status);
      const res = await restCall(key);
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe(String(callLimit(free)));
      expect(res.body._meta[BUDGET_META].plan).toBe('free');
      expect(res.body._meta[BUDGET_META].requests_remaining).toBeLessThan(free.quotas.requests_per_month);
      expect(await balance(admin)).toMatchObject({ plan: 'free', subscribed_plan: 'pro', subscription_status: status });
    }
  });

  describe('two app instances sharing PostgreSQL (and Redis when REDIS_URL is set)', () => {
    let t2: TestApp;

    beforeAll(async () => {
      t2 = await createTestApp({ PLANS_FILE: plansFile, BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET });
    }, 60_000);

    afterAll(async () => {
      await t2?.close();
    });

    function callOn(app: TestApp, key: string, i: number) {
      return app.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': key }, body: { arguments: { message: `r${i}` } } });
    }

    async function meteredRequests(admin: string, keyId: string): Promise<number> {
      // Each instance flushes its own buffer (every second, and on shutdown); flush both now.
      await Promise.all([t.app.get(UsageBuffer).flush(), t2.app.get(UsageBuffer).flush()]);
      const res = await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyId}/usage`, token: admin });
      expect(res.status).toBe(200);
      return res.body.requests_count;
    }

    /**
     * Calls that are not admitted must be refused, never served. Under this burst on one tenant a
     * few may be shed with 503 service_unavailable instead of 429 (the pool waits at most 2 s for a
     * connection while admissions and refusal audits queue on the tenant's rows and audit-chain
     * lock); that is capacity, not exactness, so it is allowed here but must admit nothing.
     */
    function expectRefusedOrShed(results: { status: number; headers: Record<string, unknown>; body: any }[], refusal: 'quota_exceeded' | 'insufficient_credits') {
      for (const r of results.filter((x) => x.status !== 200)) {
        if (r.status === 503) {
          expect(r.body.code).toBe('service_unavailable');
          expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        } else {
          expect(r.status).toBe(refusal === 'quota_exceeded' ? 429 : 402);
          expect(r.body.code).toBe(refusal);
        }
      }
    }

    it('200 concurrent calls split across both against a quota of 50: exactly 50 admitted; quota row and usage = 50', async () => {
      const { tenant, admin, key, keyId } = await tenantOn('quota50');
      const upstreamBefore = fake.callCount('echo');
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => callOn(i % 2 ? t2 : t, key, i)));
      expect(results.filter((r) => r.status === 200).length).toBe(50);
      expectRefusedOrShed(results, 'quota_exceeded');
      expect(results.filter((r) => r.status === 429).length).toBeGreaterThan(0);
      expect(fake.callCount('echo') - upstreamBefore).toBe(50);
      expect(await quotaRequests(tenant)).toBe(50);
      expect(await meteredRequests(admin, keyId)).toBe(50);
      expect((await balance(admin)).balance).toBe(1_000 - 50);
    });

    it('credits worth 10 calls, 100 concurrent calls split across both: exactly 10 admitted, balance 0, never below; usage = 10', async () => {
      const { tenant, admin, key, keyId } = await tenantOn('credits10');
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => callOn(i % 2 ? t2 : t, key, i)));
      expect(results.filter((r) => r.status === 200).length).toBe(10);
      expectRefusedOrShed(results, 'insufficient_credits');
      expect(results.filter((r) => r.status === 402).length).toBeGreaterThan(0);
      expect((await balance(admin)).balance).toBe(0);
      const rows = await ledger(admin);
      expect(rows.filter((r) => r.type === 'charge').length).toBe(10);
      expect(rows.filter((r) => r.type === 'grant').length).toBe(1);
      expectConsistentChain(rows, 0);
      expect(await quotaRequests(tenant)).toBe(10);
      expect(await meteredRequests(admin, keyId)).toBe(10);
    });
  });

  it('an unknown plan is a clear error, never a silent default: via the webhook 422 and nothing changes; directly it throws', async () => {
    const { tenant, admin, key } = await tenantOn('tiny');
    const id = `evt_${randomBytes(6).toString('hex')}`;
    const { raw, signature } = signed({ id, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'platinum', status: 'active' } });
    const res = await postWebhook(raw, signature);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(JSON.stringify(res.body)).toContain('platinum');

    expect(await balance(admin)).toMatchObject({ plan: 'tiny', subscribed_plan: 'tiny', subscription_status: 'active' });
    const call = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': key } });
    expect(call.headers['x-ratelimit-limit']).toBe('5');
    expect((await t.db.query(`SELECT count(*)::int AS n FROM billing_events WHERE id = $1`, [id]))[0].n).toBe(0);
    const audit = await t.request({ method: 'GET', url: '/api/v1/audit-logs?action=plan.changed', token: admin });
    expect(audit.status).toBe(200);
    expect(audit.body.data.filter((e: any) => e.metadata?.plan === 'platinum')).toEqual([]);

    // The event was not consumed: the corrected event with the same id is applied.
    const fixed = signed({ id, type: 'subscription.updated', data: { tenant_id: tenant, plan: 'pro', status: 'active' } });
    const ok = await postWebhook(fixed.raw, fixed.signature);
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('processed');

    await expect(setPlan(t, tenant, 'no-such-plan')).rejects.toMatchObject({ code: 'validation_failed' });
    expect((await balance(admin)).plan).toBe('pro');
  });
});
