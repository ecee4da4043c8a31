import { UsageBuffer } from '../../src/usage/application/usage-buffer';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant, verifyKey } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
type As = 'admin' | 'auditor';

/**
 * Issue 5: every id-bearing route, called by another tenant with tenant A's
 * ids, answers 404 not_found (never 403, never A's data) and changes nothing
 * of A's. The route table below is the acceptance list.
 */
describe('Tenant isolation: another tenant\'s ids are always 404 (e2e)', () => {
  let t: TestApp;
  let fake: FakeUpstream;

  // Tenant A: one of everything that has an id.
  const tenantA = uniqueTenant('iso-a');
  const adminA = managementToken({ tenantId: tenantA, sub: 'alice', roles: ['admin'] });
  const auditorA = managementToken({ tenantId: tenantA, sub: 'audrey', roles: ['auditor'] });
  let keyA: { id: string; token: string };
  let serverA: { id: string; name: string };
  let auditIdA: string;

  // Tenant B: the intruder.
  const tenantB = uniqueTenant('iso-b');
  const adminB = managementToken({ tenantId: tenantB, sub: 'bob', roles: ['admin'] });
  const auditorB = managementToken({ tenantId: tenantB, sub: 'bert', roles: ['auditor'] });
  const serviceB = managementToken({ tenantId: tenantB, sub: 'b-backend', roles: ['service'] });
  let keyB: { id: string; token: string };

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
    // Room for the test's calls whatever the default plan's limits are.
    await setPlan(t, tenantA, 'pro');
    await setPlan(t, tenantB, 'pro');

    const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: adminA, body: { name: 'alpha', url: fake.url } });
    expect(reg.status).toBe(201);
    serverA = reg.body;
    keyA = await createKey(t, adminA, { permission_scope: { mcp_tool_ids: ['*'] } });
    // A's key is used: usage buckets, a credit charge and audit events for A.
    const call = await t.request({
      method: 'POST',
      url: '/api/v1/mcp/tools/alpha__echo/call',
      headers: { 'x-api-key': keyA.token },
      body: { arguments: { message: 'from A' } },
    });
    expect(call.status).toBe(200);
    await t.app.get(UsageBuffer).flush();

    const audit = await t.request({ method: 'GET', url: '/api/v1/audit-logs?limit=100', token: auditorA });
    expect(audit.status).toBe(200);
    expect(audit.body.data.length).toBeGreaterThan(0);
    auditIdA = audit.body.data[0].id;

    // B has its own upstream (another name, same fake) and a key allowed every tool.
    const regB = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: adminB, body: { name: 'beta', url: fake.url } });
    expect(regB.status).toBe(201);
    keyB = await createKey(t, adminB, { permission_scope: { mcp_tool_ids: ['*'] } });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  /** Everything of tenant A's in the database, to compare before and after B's attempts. */
  async function snapshotA() {
    const [key] = await t.db.query(`SELECT * FROM api_keys WHERE id = $1`, [keyA.id]);
    const [server] = await t.db.query(`SELECT * FROM mcp_servers WHERE id = $1`, [serverA.id]);
    const [event] = await t.db.query(`SELECT * FROM audit_events WHERE id = $1`, [auditIdA]);
    const keys = await t.db.query(`SELECT id FROM api_keys WHERE tenant_id = $1 ORDER BY id`, [tenantA]);
    const servers = await t.db.query(`SELECT id FROM mcp_servers WHERE tenant_id = $1 ORDER BY id`, [tenantA]);
    const [{ n: events }] = await t.db.query(`SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1`, [tenantA]);
    return { key, server, event, keys, servers, events };
  }

  function expectNotFound(res: { status: number; headers: Record<string, unknown>; body: any; text: string }) {
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 404, body: { status: 404, code: 'not_found' } });
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    // Nothing of A's leaks into the refusal.
    expect(res.text).not.toContain(tenantA);
  }

  const tokenOf = (as: As) => (as === 'admin' ? adminB : auditorB);

  interface Route {
    route: string;
    as: As;
    method: Method;
    url: () => string;
    body?: unknown;
  }
  /** Every route that takes an id, called by B with A's ids. */
  const ROUTES: Route[] = [
    { route: 'GET /api/v1/api-keys/:id', as: 'admin', method: 'GET', url: () => `/api/v1/api-keys/${keyA.id}` },
    { route: 'PATCH /api/v1/api-keys/:id', as: 'admin', method: 'PATCH', url: () => `/api/v1/api-keys/${keyA.id}`, body: { name: 'stolen', enabled: false } },
    { route: 'DELETE /api/v1/api-keys/:id', as: 'admin', method: 'DELETE', url: () => `/api/v1/api-keys/${keyA.id}` },
    { route: 'POST /api/v1/api-keys/:id/rotate', as: 'admin', method: 'POST', url: () => `/api/v1/api-keys/${keyA.id}/rotate`, body: { grace_period_seconds: 0 } },
    { route: 'GET /api/v1/api-keys/:id/usage', as: 'admin', method: 'GET', url: () => `/api/v1/api-keys/${keyA.id}/usage` },
    { route: 'GET /api/v1/usage?key_id=', as: 'admin', method: 'GET', url: () => `/api/v1/usage?key_id=${keyA.id}` },
    { route: 'GET /api/v1/mcp/servers/:id', as: 'admin', method: 'GET', url: () => `/api/v1/mcp/servers/${serverA.id}` },
    { route: 'PATCH /api/v1/mcp/servers/:id', as: 'admin', method: 'PATCH', url: () => `/api/v1/mcp/servers/${serverA.id}`, body: { name: 'stolen', timeout_ms: 1000 } },
    { route: 'DELETE /api/v1/mcp/servers/:id', as: 'admin', method: 'DELETE', url: () => `/api/v1/mcp/servers/${serverA.id}` },
    { route: 'POST /api/v1/mcp/servers/:id/refresh', as: 'admin', method: 'POST', url: () => `/api/v1/mcp/servers/${serverA.id}/refresh` },
    { route: 'GET /api/v1/audit-logs/:id', as: 'admin', method: 'GET', url: () => `/api/v1/audit-logs/${auditIdA}` },
    { route: 'GET /api/v1/audit-logs/:id', as: 'auditor', method: 'GET', url: () => `/api/v1/audit-logs/${auditIdA}` },
  ];

  describe('route table: B with A\'s ids → 404 not_found, A unchanged', () => {
    it.each(ROUTES)('$route as B\'s $as', async ({ as, method, url, body }) => {
      const before = await snapshotA();
      const res = await t.request({ method, url: url(), token: tokenOf(as), body });
      expectNotFound(res);
      expect(await snapshotA()).toEqual(before);
    });

    it('A still sees and uses all of it afterwards', async () => {
      expect((await t.request({ method: 'GET', url: `/api/v1/api-keys/${keyA.id}`, token: adminA })).body).toMatchObject({ id: keyA.id, status: 'active' });
      expect((await t.request({ method: 'GET', url: `/api/v1/mcp/servers/${serverA.id}`, token: adminA })).body).toMatchObject({
        id: serverA.id,
        name: 'alpha',
      });
      expect((await t.request({ method: 'GET', url: `/api/v1/audit-logs/${auditIdA}`, token: auditorA })).status).toBe(200);
      expect((await t.request({ method: 'GET', url: `/api/v1/usage?key_id=${keyA.id}`, token: adminA })).status).toBe(200);
      const tools = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': keyA.token } });
      expect(tools.status).toBe(200);
      expect(tools.body.data.map((x: { name: string }) => x.name)).toContain('alpha__echo');
    });
  });

  describe('B\'s lists never include A\'s data', () => {
    it('GET /api/v1/api-keys', async () => {
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: adminB });
      expect(res.status).toBe(200);
      expect(res.body.data.map((k: { id: string }) => k.id)).toEqual([keyB.id]);
      expect(res.text).not.toContain(keyA.id);
    });

    it('GET /api/v1/mcp/servers', async () => {
      const res = await t.request({ method: 'GET', url: '/api/v1/mcp/servers', token: adminB });
      expect(res.status).toBe(200);
      expect(res.body.data.map((s: { name: string }) => s.name)).toEqual(['beta']);
      expect(res.text).not.toContain(serverA.id);
    });

    it.each<[As]>([['admin'], ['auditor']])('GET /api/v1/audit-logs as B\'s %s', async (as) => {
      const mine = await t.db.query(`SELECT id FROM audit_events WHERE tenant_id = $1`, [tenantA]);
      const res = await t.request({ method: 'GET', url: '/api/v1/audit-logs?limit=200', token: tokenOf(as) });
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeGreaterThan(0); // B's own events are there
      const ids = new Set(res.body.data.map((e: { id: string }) => e.id));
      for (const { id } of mine) expect(ids.has(id)).toBe(false);
      expect(res.text).not.toContain(tenantA);
      expect(res.text).not.toContain(keyA.id);
    });

    it('GET /api/v1/credits/transactions', async () => {
      const a = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: adminA });
      expect(a.body.data.some((x: { key_id: string | null }) => x.key_id === keyA.id)).toBe(true);
      const res = await t.request({ method: 'GET', url: '/api/v1/credits/transactions?limit=100', token: adminB });
      expect(res.status).toBe(200);
      const aIds = new Set(a.body.data.map((x: { id: string }) => x.id));
      for (const x of res.body.data) expect(aIds.has(x.id)).toBe(false);
      expect(res.text).not.toContain(keyA.id);
    });

    it('GET /api/v1/usage', async () => {
      const a = await t.request({ method: 'GET', url: '/api/v1/usage', token: adminA });
      expect(a.body.buckets.reduce((n: number, b: { requests: number }) => n + b.requests, 0)).toBeGreaterThan(0);
      const res = await t.request({ method: 'GET', url: '/api/v1/usage', token: adminB });
      expect(res.status).toBe(200);
      expect(res.body.buckets).toEqual([]);
    });
  });

  it('POST /api/v1/keys/verify with A\'s key as B\'s service → valid false, invalid_key, key_id null', async () => {
    const res = await verifyKey(t, serviceB, { key: keyA.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: false, code: 'invalid_key', key_id: null });
    expect(res.text).not.toContain(keyA.id);
    expect(res.text).not.toContain(tenantA);
    // The same key is valid for its own tenant's service.
    const own = await verifyKey(t, managementToken({ tenantId: tenantA, sub: 'a-backend', roles: ['service'] }), { key: keyA.token });
    expect(own.body).toMatchObject({ valid: true, key_id: keyA.id });
  });

  it('B\'s agent key (all tools allowed) cannot see or reach A\'s tools', async () => {
    const list = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': keyB.token } });
    expect(list.status).toBe(200);
    const names: string[] = list.body.data.map((x: { name: string }) => x.name);
    expect(names).toContain('beta__echo');
    expect(names.filter((n) => !n.startsWith('beta__'))).toEqual([]);

    const calls = fake.callCount('echo');
    expectNotFound(await t.request({ method: 'GET', url: '/api/v1/mcp/tools/alpha__echo', headers: { 'x-api-key': keyB.token } }));
    expectNotFound(
      await t.request({
        method: 'POST',
        url: '/api/v1/mcp/tools/alpha__echo/call',
        headers: { 'x-api-key': keyB.token },
        body: { arguments: { message: 'from B' } },
      }),
    );
    expect(fake.callCount('echo')).toBe(calls);
  });
});
