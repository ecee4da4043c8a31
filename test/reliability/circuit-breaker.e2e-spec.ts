import { CircuitBreaker } from '../../src/mcp/domain/circuit-breaker';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

/**
 * How long the circuit stays open. The steps between the failure that opens it and the call that
 * must find it open (two queries, one call) have to fit in it even on a slow host, so not too short.
 */
const COOLDOWN_MS = 3_000;
/** The upstream's timeout_ms: a call that reached a hanging upstream would take at least this long. */
const UPSTREAM_TIMEOUT_MS = 500;

/** Issue 8 §4: a dead upstream is not hammered, refused calls cost nothing, and the circuit closes when it recovers. */
describe('circuit breaker on a dead upstream', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let key: string;
  let tenant: string;
  let admin: string;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp({}, [{ provide: CircuitBreaker, useValue: new CircuitBreaker(2, COOLDOWN_MS) }]);
    tenant = uniqueTenant('breaker');
    admin = managementToken({ tenantId: tenant });
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url, timeout_ms: UPSTREAM_TIMEOUT_MS } })).status).toBe(201);
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
    const openedBy = Date.now(); // the failure that opened the circuit was recorded before this
    const ledgerBefore = await ledgerRows();
    const quotaBefore = await quota();

    const started = Date.now();
    const open = await call();
    const fastMs = Date.now() - started;
    expect(open.status).toBe(502);
    expect(open.body).toMatchObject({ code: 'upstream_error' });
    expect(open.body.detail).toContain('circuit open');
    // Refused before anything could have reached the upstream and waited for it (a slow host
    // stretches the request itself, so the bound is the upstream's timeout, not a few ms).
    expect(fastMs).toBeLessThan(UPSTREAM_TIMEOUT_MS);
    // Not admitted: no charge, no refund, no quota taken.
    expect(await ledgerRows()).toEqual(ledgerBefore);
    expect(await quota()).toBe(quotaBefore);
    // Readiness reports the open circuit and stays ready (a dead upstream does not take the replica out).
    const ready = await t.request({ method: 'GET', url: '/health/ready' });
    expect(ready.status).toBe(200);
    expect(ready.body.details.upstreams).toEqual({ status: 'up', open_circuits: 1, failing: 0 });

    await fake.start();
    // Cooldown, measured from the call that opened the circuit.
    await new Promise((r) => setTimeout(r, Math.max(0, openedBy + COOLDOWN_MS + 100 - Date.now())));
    const trial = await call();
    expect(trial.status).toBe(200);
    expect((await call()).status).toBe(200);
    process.stdout.write(`circuit breaker: refused in ${fastMs} ms while open; closed again after the first successful trial\n`);
  });
});
