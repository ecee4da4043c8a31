import { CircuitBreaker } from '../../src/mcp/domain/circuit-breaker';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

/** Issue 8 §4: a dead upstream is not hammered, refused calls cost nothing, and the circuit closes when it recovers. */
describe('circuit breaker on a dead upstream', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let key: string;
  let tenant: string;
  let admin: string;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp({}, [{ provide: CircuitBreaker, useValue: new CircuitBreaker(2, 800) }]);
    tenant = uniqueTenant('breaker');
    admin = managementToken({ tenantId: tenant });
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url, timeout_ms: 500 } })).status).toBe(201);
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  const call = () => t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__echo/call', headers: { 'x-api-key': key }, body: { arguments: { message: 'x' } } });
  const ledgerRows = async () => (await t.db.query(`SELECT type FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`, [tenant])).map((r: { type: string }) => r.type);
  const quota = async () => Number((await t.db.query(`SELECT coalesce(sum(requests), 0) AS n FROM quota_counters WHERE tenant_id = $1`, [tenant]))[0].n);

  it('opens after consecutive failures, fails fast without charging, and closes after a successful trial', async () => {
    expect((await call()).status).toBe(200);
    await fake.stop();
    expect((await call()).status).toBe(502);
    expect((await call()).status).toBe(502);
    const ledgerBefore = await ledgerRows();
    const quotaBefore = await quota();

    const started = Date.now();
    const open = await call();
    const fastMs = Date.now() - started;
    expect(open.status).toBe(502);
    expect(open.body).toMatchObject({ code: 'upstream_error' });
    expect(open.body.detail).toContain('circuit open');
    expect(fastMs).toBeLessThan(200);
    // Not admitted: no charge, no refund, no quota taken.
    expect(await ledgerRows()).toEqual(ledgerBefore);
    expect(await quota()).toBe(quotaBefore);

    await fake.start();
    await new Promise((r) => setTimeout(r, 900)); // cooldown
    const trial = await call();
    expect(trial.status).toBe(200);
    expect((await call()).status).toBe(200);
    process.stdout.write(`circuit breaker: refused in ${fastMs} ms while open; closed again after the first successful trial\n`);
  });
});
