import { createServer, IncomingMessage, Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { AddressInfo, createServer as createTcpServer, isIP, Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { AlertsService } from '../../src/alerts/application/alerts.service';
import { HostResolver } from '../../src/alerts/domain/host-resolver';
import { CreditsService } from '../../src/plans/application/credits.service';
import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { verifySignature } from '../../src/shared/domain/webhook-signature';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeJwks, startFakeJwks } from '../support/fake-jwks';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';

interface Received {
  body: Record<string, any>;
  raw: string;
  signature: string;
}

/** A tenant's alert endpoint: records what it gets; can be told to fail the next N requests. */
class Receiver {
  received: Received[] = [];
  failNext = 0;
  private server: Server | null = null;
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req: IncomingMessage, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        if (this.failNext > 0) {
          this.failNext--;
          res.statusCode = 500;
          return res.end('nope');
        }
        this.received.push({ body: JSON.parse(raw), raw, signature: String(req.headers['tollgate-signature']) });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/tollgate`;
  }

  ofType(type: string): Received[] {
    return this.received.filter((r) => r.body.type === type);
  }

  close(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe('Alerts: signed outbound webhooks (P6)', () => {
  let t: TestApp;
  let upstream: FakeUpstream;
  let receiver: Receiver;
  let alerts: AlertsService;

  beforeAll(async () => {
    const plans = join(process.env.DATA_DIR!, `alert-plans-${Date.now()}.json`);
    writeFileSync(
      plans,
      JSON.stringify([
        { id: 'quota5', name: 'Quota 5', rate_limits: { per_minute: 1000, per_hour: 10000 }, quotas: { requests_per_month: 5, tokens_per_month: 1000000 }, max_keys: 10, included_credits: 1000 },
        { id: 'credits12', name: 'Credits 12', rate_limits: { per_minute: 1000, per_hour: 10000 }, quotas: { requests_per_month: 1000, tokens_per_month: 1000000 }, max_keys: 10, included_credits: 12 },
        { id: 'roomy', name: 'Roomy', rate_limits: { per_minute: 1000, per_hour: 10000 }, quotas: { requests_per_month: 1000, tokens_per_month: 1000000 }, max_keys: 10, included_credits: 1000 },
        { id: 'quota10', name: 'Quota 10', rate_limits: { per_minute: 1000, per_hour: 10000 }, quotas: { requests_per_month: 10, tokens_per_month: 1000000 }, max_keys: 10, included_credits: 1000 },
        { id: 'tokens200', name: 'Tokens 200', rate_limits: { per_minute: 1000, per_hour: 10000 }, quotas: { requests_per_month: 1000, tokens_per_month: 200 }, max_keys: 10, included_credits: 1000 },
      ]),
    );
    upstream = await new FakeUpstream().start();
    receiver = await new Receiver().start();
    t = await createTestApp({ PLANS_FILE: plans });
    alerts = t.app.get(AlertsService);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await upstream?.stop();
    await receiver?.close();
  });

  async function tenantWithAlerts(plan: string, body: Record<string, unknown> = {}) {
    const tenant = uniqueTenant('alerts');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, plan);
    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: upstream.url } });
    expect(reg.status).toBe(201);
    const put = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: receiver.url, ...body } });
    expect(put.status).toBe(200);
    expect(put.body.signing_secret).toMatch(/^whsec_/);
    const key = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } });
    const callTool = (name: string, args: Record<string, unknown>) =>
      t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key.token }, body: { arguments: args } });
    const call = () => callTool('fake__echo', { message: 'hi' });
    return { tenant, admin, key, secret: put.body.signing_secret as string, call, callTool };
  }

  type Row = Record<string, unknown>;
  const deliveries = (tenant: string, columns = 'type, status, attempts'): Promise<Row[]> =>
    t.db.query(`SELECT ${columns} FROM alert_deliveries WHERE tenant_id = $1 ORDER BY created_at`, [tenant]);

  /**
   * Alerts are queued after commit, off the response path, and the app's own dispatcher runs every
   * second: a dispatch() called while its round runs joins that round, which may have claimed before
   * the alert was queued. So no fixed pause: dispatch until the tenant's outbox reaches `done`
   * (a slow host may take a while to queue it), for up to 15 s, and return the rows.
   */
  async function dispatchUntil(tenant: string, done: (rows: Row[]) => boolean, columns?: string): Promise<Row[]> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      await alerts.dispatch();
      const rows = await deliveries(tenant, columns);
      if (done(rows) || Date.now() > deadline) return rows;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  /** Every delivery of the tenant is settled (delivered or failed) or waits for a retry, and there are `n`. */
  const attempted = (n: number) => (rows: Row[]) => rows.length >= n && rows.every((r) => r.status !== 'pending' || Number(r.attempts) > 0);

  it('sends quota.threshold at 80 % and 100 %, once each, signed with the tenant secret', async () => {
    const { tenant, secret, call } = await tenantWithAlerts('quota5');
    for (let i = 0; i < 6; i++) await call();
    await dispatchUntil(tenant, attempted(2));
    const got = receiver.ofType('quota.threshold').filter((r) => r.body.tenant_id === tenant);
    expect(got.map((r) => r.body.data.percent).sort()).toEqual([100, 80]);
    expect(got.find((r) => r.body.data.percent === 80)!.body.data).toMatchObject({ used: 4, limit: 5, plan: 'quota5' });
    for (const r of got) {
      expect(verifySignature(secret, r.signature, Buffer.from(r.raw), Math.floor(Date.now() / 1000))).toEqual({ ok: true });
      expect(verifySignature('whsec_wrong_secret_000000', r.signature, Buffer.from(r.raw), Math.floor(Date.now() / 1000)).ok).toBe(false);
    }
    const rows = await t.db.query(`SELECT type, status, attempts FROM alert_deliveries WHERE tenant_id = $1 ORDER BY created_at`, [tenant]);
    expect(rows).toEqual([
      { type: 'quota.threshold', status: 'delivered', attempts: 1 },
      { type: 'quota.threshold', status: 'delivered', attempts: 1 },
    ]);
  });

  it('sends credits.low when the balance falls below the threshold', async () => {
    const { tenant, call } = await tenantWithAlerts('credits12', { credits_threshold: 10 });
    for (let i = 0; i < 3; i++) expect((await call()).status).toBe(200);
    await dispatchUntil(tenant, attempted(1));
    const got = receiver.ofType('credits.low').filter((r) => r.body.tenant_id === tenant);
    expect(got).toHaveLength(1);
    expect(got[0].body.data).toEqual({ balance: 9, threshold: 10 });
  });

  /**
   * The tenant's queued alerts of `type`, once at least `min` are there and none has been added for
   * a second (they are queued off the response path; up to 15 s).
   */
  async function settledAlerts(tenant: string, type: string, min: number): Promise<Row[]> {
    const deadline = Date.now() + 15_000;
    let last = -1;
    let since = Date.now();
    for (;;) {
      const rows: Row[] = await t.db.query(`SELECT dedupe_key, payload FROM alert_deliveries WHERE tenant_id = $1 AND type = $2 ORDER BY created_at`, [tenant, type]);
      if (rows.length !== last) [last, since] = [rows.length, Date.now()];
      else if (rows.length >= min && Date.now() - since >= 1_000) return rows;
      if (Date.now() > deadline) return rows;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const month = () => new Date().toISOString().slice(0, 7);
  const quotaPayloads = (rows: Row[]) =>
    rows.map((r) => r.payload as Record<string, unknown>).sort((a, b) => Number(a.limit) - Number(b.limit) || Number(a.percent) - Number(b.percent) || String(a.metric).localeCompare(String(b.metric)));

  it('sends credits.low once while failed calls are refunded over the threshold; a purchase re-arms it', async () => {
    const { tenant, callTool, call } = await tenantWithAlerts('roomy', { credits_threshold: 1_000 });
    // Each failed call is charged (1000 → 999, under the threshold) and refunded (back to 1000).
    for (let i = 0; i < 5; i++) expect((await callTool('fake__boom', {})).status).toBe(502);
    const balance = await t.request({ method: 'GET', url: '/api/v1/credits', token: managementToken({ tenantId: tenant }) });
    expect(balance.body.balance).toBe(1_000);
    const once = await settledAlerts(tenant, 'credits.low', 1);
    expect(once).toHaveLength(1);
    expect(once[0].payload).toEqual({ balance: 999, threshold: 1_000 });
    // A purchase lifts the balance over the threshold: falling under it again alerts again, once.
    await t.app.get(CreditsService).add(tenant, 'purchase', 1, `evt_${tenant}`, { type: 'system', id: 'test' });
    expect((await call()).status).toBe(200); // 1001 → 1000
    expect((await call()).status).toBe(200); // 1000 → 999
    for (let i = 0; i < 2; i++) expect((await callTool('fake__boom', {})).status).toBe(502);
    const twice = await settledAlerts(tenant, 'credits.low', 2);
    expect(twice.map((r) => r.payload)).toEqual([
      { balance: 999, threshold: 1_000 },
      { balance: 999, threshold: 1_000 },
    ]);
  });

  it('sends the new plan’s 80 % and 100 % after an upgrade in the month', async () => {
    const { tenant, call } = await tenantWithAlerts('quota5');
    for (let i = 0; i < 5; i++) expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(429);
    await setPlan(t, tenant, 'quota10');
    for (let i = 0; i < 5; i++) expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(429);
    const rows = await settledAlerts(tenant, 'quota.threshold', 4);
    expect(quotaPayloads(rows)).toEqual([
      { plan: 'quota5', metric: 'requests', percent: 80, used: 4, limit: 5, period: month() },
      { plan: 'quota5', metric: 'requests', percent: 100, used: 5, limit: 5, period: month() },
      { plan: 'quota10', metric: 'requests', percent: 80, used: 8, limit: 10, period: month() },
      { plan: 'quota10', metric: 'requests', percent: 100, used: 10, limit: 10, period: month() },
    ]);
    // Delivered as documented: {id, type, tenant_id, created_at, data: {plan, metric, percent, used, limit, period}}.
    await dispatchUntil(tenant, attempted(4));
    const got = receiver.ofType('quota.threshold').filter((r) => r.body.tenant_id === tenant);
    expect(got.map((r) => r.body.data)).toContainEqual({ plan: 'quota10', metric: 'requests', percent: 100, used: 10, limit: 10, period: month() });
  });

  it('sends 100 % when a downgrade leaves the month’s requests over the new quota', async () => {
    const { tenant, call } = await tenantWithAlerts('quota10');
    for (let i = 0; i < 8; i++) expect((await call()).status).toBe(200);
    await setPlan(t, tenant, 'quota5');
    const refused = await call();
    expect(refused.status).toBe(429);
    expect(refused.body.quota_info).toMatchObject({ plan: 'quota5', limit: 5, used: 8 });
    const rows = await settledAlerts(tenant, 'quota.threshold', 3);
    expect(quotaPayloads(rows)).toEqual([
      { plan: 'quota5', metric: 'requests', percent: 80, used: 8, limit: 5, period: month() },
      { plan: 'quota5', metric: 'requests', percent: 100, used: 8, limit: 5, period: month() },
      { plan: 'quota10', metric: 'requests', percent: 80, used: 8, limit: 10, period: month() },
    ]);
  });

  it('sends 100 % on a downgrade when this replica served none of the month’s calls', async () => {
    // The month's 8 requests went through another replica (or ended long ago): only the plan change tells this one.
    const { tenant, call } = await tenantWithAlerts('quota10');
    await t.db.query(`INSERT INTO quota_counters (tenant_id, period, requests, tokens) VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 8, 0)`, [tenant]);
    await setPlan(t, tenant, 'quota5');
    expect((await call()).status).toBe(429);
    const rows = await settledAlerts(tenant, 'quota.threshold', 2);
    expect(quotaPayloads(rows)).toEqual([
      { plan: 'quota5', metric: 'requests', percent: 80, used: 8, limit: 5, period: month() },
      { plan: 'quota5', metric: 'requests', percent: 100, used: 8, limit: 5, period: month() },
    ]);
  });

  it('sends 80 % and 100 % of the token quota, counted by the usage flush', async () => {
    const { tenant, call } = await tenantWithAlerts('tokens200');
    let refused: Awaited<ReturnType<typeof call>> | null = null;
    for (let i = 0; i < 50 && !refused; i++) {
      const res = await call();
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(200);
      await t.app.get(UsageBuffer).flush(); // the call's tokens reach quota_counters
    }
    expect(refused?.body).toMatchObject({ code: 'quota_exceeded', quota_info: { plan: 'tokens200', limit: 200 } });
    const rows = await settledAlerts(tenant, 'quota.threshold', 2);
    const payloads = quotaPayloads(rows);
    expect(payloads.map((p) => [p.metric, p.percent, p.limit, p.plan])).toEqual([
      ['tokens', 80, 200, 'tokens200'],
      ['tokens', 100, 200, 'tokens200'],
    ]);
    expect(Number(payloads[0].used)).toBeGreaterThanOrEqual(160);
    expect(Number(payloads[1].used)).toBeGreaterThanOrEqual(200);
  });

  it('retries a failed delivery with backoff and records each attempt', async () => {
    const { tenant, call } = await tenantWithAlerts('quota5');
    receiver.failNext = 1;
    const callsFrom = Date.now(); // the alert is queued (and first attempted) after this
    for (let i = 0; i < 4; i++) await call();
    const failed = await dispatchUntil(tenant, attempted(1), 'status, attempts, last_status, last_error');
    expect(failed).toEqual([{ status: 'pending', attempts: 1, last_status: 500, last_error: 'HTTP 500' }]);
    // The retry is due 1 s after the failed attempt (backoff): dispatch until it has happened,
    // rather than sleeping a fixed time measured from here.
    const rows = await dispatchUntil(tenant, (r) => r.length > 0 && r[0].status !== 'pending', 'status, attempts, last_status, delivered_at');
    expect(rows.map(({ delivered_at: _at, ...r }) => r)).toEqual([{ status: 'delivered', attempts: 2, last_status: 204 }]);
    // Not retried before the backoff was over.
    expect((rows[0].delivered_at as Date).getTime()).toBeGreaterThanOrEqual(callsFrom + 1_000);
    const list = await t.request({ method: 'GET', url: '/api/v1/alerts/deliveries', token: managementToken({ tenantId: tenant }) });
    expect(list.status).toBe(200);
    expect(list.body.data[0]).toMatchObject({ type: 'quota.threshold', status: 'delivered', attempts: 2 });
  });

  it('warns about keys nearing expiry, once per key', async () => {
    const { tenant, admin } = await tenantWithAlerts('quota5', { key_expiry_days: 7 });
    const soon = await createKey(t, admin, { expires_at: new Date(Date.now() + 2 * 86_400_000).toISOString() });
    await createKey(t, admin, { expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString() });
    await alerts.scanExpiringKeys();
    await alerts.scanExpiringKeys();
    await dispatchUntil(tenant, attempted(1));
    const got = receiver.ofType('key.expiring').filter((r) => r.body.tenant_id === tenant);
    expect(got.map((r) => r.body.data.key_id)).toEqual([soon.id]);
  });

  it('keeps the signing secret out of GET, refuses bad URLs, and audits configuration', async () => {
    const tenant = uniqueTenant('alerts');
    const admin = managementToken({ tenantId: tenant });
    const bad = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: 'ftp://example.com/x' } });
    expect(bad.status).toBe(422);
    const first = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: receiver.url, credits_threshold: 5 } });
    const again = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: receiver.url } });
    expect(again.body.signing_secret).toBeUndefined();
    expect(again.body.credits_threshold).toBe(5);
    const rotated = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: receiver.url, rotate_secret: true } });
    expect(rotated.body.signing_secret).toMatch(/^whsec_/);
    expect(rotated.body.signing_secret).not.toBe(first.body.signing_secret);
    const get = await t.request({ method: 'GET', url: '/api/v1/alerts/settings', token: admin });
    expect(get.status).toBe(200);
    expect(get.text).not.toContain('whsec_');
    const stored = await t.db.query(`SELECT secret_encrypted FROM alert_settings WHERE tenant_id = $1`, [tenant]);
    expect(stored[0].secret_encrypted).not.toContain(rotated.body.signing_secret);
    const audit = await t.db.query(`SELECT action, metadata::text AS m FROM audit_events WHERE tenant_id = $1`, [tenant]);
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['alerts.configured', 'alerts.configured', 'alerts.configured']);
    expect(audit.map((a: { m: string }) => a.m).join()).not.toContain('whsec_');
    const developer = await t.request({ method: 'GET', url: '/api/v1/alerts/settings', token: managementToken({ tenantId: tenant, roles: ['developer'] }) });
    expect(developer.status).toBe(403);
  });
});

/**
 * F8: in production, alerts go to public hosts only. The app runs with NODE_ENV=production (JWKS
 * management tokens, as production requires) and a fake resolver standing in for DNS; the
 * loopback listener below must never see a connection. (This block runs after the one above has
 * closed its app, so no test-mode dispatcher delivers these tenants' alerts.)
 */
describe('Alerts in production: public hosts only (F8)', () => {
  const ISSUER = 'https://idp.test/';
  const AUDIENCE = 'tollgate-api';
  let jwks: FakeJwks;
  let t: TestApp;
  let alerts: AlertsService;
  let trap: TcpServer;
  let trapPort = 0;
  let connections = 0;
  /** hooks.example.com "resolves" to the loopback listener. */
  const resolver = new (class extends HostResolver {
    async resolve(hostname: string) {
      const answers: Record<string, string[]> = { 'hooks.example.com': ['127.0.0.1'], 'mixed.example.com': ['93.184.215.14', '::1'] };
      return (answers[hostname] ?? []).map((address) => ({ address, family: isIP(address) as 4 | 6 }));
    }
  })();

  beforeAll(async () => {
    trap = createTcpServer((socket) => socket.destroy());
    trap.on('connection', () => connections++);
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
    trapPort = (trap.address() as AddressInfo).port;
    jwks = await startFakeJwks();
    t = await createTestApp(
      { NODE_ENV: 'production', JWT_JWKS_URI: jwks.jwksUri, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: undefined },
      [{ provide: HostResolver, useValue: resolver }],
    );
    alerts = t.app.get(AlertsService);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await jwks?.close();
    await new Promise((r) => trap?.close(r));
  });

  const adminOf = (tenant: string) => jwks.sign({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', tenant_id: tenant, roles: ['admin'] }, { alg: 'RS256' });

  it.each([
    'https://[::ffff:169.254.169.254]/latest/meta-data/',
    'https://[::ffff:127.0.0.1]:8443/',
    'https://[::]:8443/',
    'https://100.100.100.200/latest/meta-data/',
    'https://metadata.google.internal/computeMetadata/v1/',
    'https://[64:ff9b::169.254.169.254]/',
    'https://api.localhost/',
    'http://hooks.example.com/',
  ])('PUT /api/v1/alerts/settings refuses %s: 422 validation_failed on url, nothing stored', async (url) => {
    const tenant = uniqueTenant('f8');
    const admin = adminOf(tenant);
    const res = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url } });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'validation_failed', errors: [{ field: 'url', message: expect.stringMatching(/^must be a public https URL: /) }] });
    expect(res.text).not.toContain('whsec_');
    expect(await t.db.query(`SELECT 1 FROM alert_settings WHERE tenant_id = $1`, [tenant])).toEqual([]);
  });

  async function leakAlertFor(url: string, storeDirectly = false) {
    const tenant = uniqueTenant('f8');
    const admin = adminOf(tenant);
    const put = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: admin, body: { url: storeDirectly ? 'https://public.example.com/hook' : url } });
    expect(put.status).toBe(200);
    // A URL saved before the configuration check existed.
    if (storeDirectly) await t.db.query(`UPDATE alert_settings SET url = $2 WHERE tenant_id = $1`, [tenant, url]);
    expect(await alerts.keyLeaked({ tenantId: tenant, keyId: 'k-1', name: 'ci', disabled: true, url: null, source: 'test', stateAt: new Date() })).toBe(true);
    const deadline = Date.now() + 15_000;
    for (;;) {
      await alerts.dispatch();
      const list = await t.request({ method: 'GET', url: '/api/v1/alerts/deliveries', token: admin });
      expect(list.status).toBe(200);
      if (list.body.data[0]?.attempts > 0 || Date.now() > deadline) return { list: list.body.data, secret: put.body.signing_secret as string };
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it.each([
    ['hooks.example.com (resolves to 127.0.0.1)', 'https://hooks.example.com:PORT/hook', false, 'refused: the host resolves to a private address'],
    ['mixed.example.com (one public, one loopback address)', 'https://mixed.example.com:PORT/hook', false, 'refused: the host resolves to a private address'],
    ['a stored https://[::ffff:127.0.0.1] URL', 'https://[::ffff:127.0.0.1]:PORT/hook', true, 'refused: ::ffff:7f00:1 is a loopback address'],
  ])('a delivery to %s fails with a clear last_error and never connects', async (_name, url, storeDirectly, message) => {
    const before = connections;
    const { list, secret } = await leakAlertFor(url.replace('PORT', String(trapPort)), storeDirectly);
    expect(list).toEqual([expect.objectContaining({ type: 'key.leaked', status: 'pending', attempts: 1, last_status: null, last_error: message })]);
    expect(JSON.stringify(list)).not.toContain(secret);
    await new Promise((r) => setTimeout(r, 100));
    expect(connections).toBe(before);
  });
});
