import { MAX_UPSTREAM_RESPONSE_BYTES } from '../../src/mcp/infrastructure/sdk-upstream.connector';
import { createTestApp, TestApp } from '../support/create-test-app';
import { FakeUpstream } from '../support/fake-upstream';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';

/** Issue 8 §4: an upstream answering a huge payload gives the agent upstream_error within the timeout and costs nothing. */
describe('oversized upstream payloads', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let key: string;
  let tenant: string;

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    t = await createTestApp();
    tenant = uniqueTenant('huge');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'pro');
    expect((await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name: 'fake', url: fake.url, timeout_ms: 10_000 } })).status).toBe(201);
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
  });

  const call = (bytes: number) =>
    t.request({ method: 'POST', url: '/api/v1/mcp/tools/fake__huge/call', headers: { 'x-api-key': key }, body: { arguments: { bytes } } });
  const ledger = async () => (await t.db.query(`SELECT type, amount FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`, [tenant])) as { type: string; amount: string }[];

  it('refuses an answer over the cap with upstream_error, refunds it, and keeps serving', async () => {
    expect((await call(1_000)).status).toBe(200); // a normal answer (and the session)
    const before = await ledger();
    const started = Date.now();
    const res = await call(MAX_UPSTREAM_RESPONSE_BYTES + 1_000);
    const ms = Date.now() - started;
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'upstream_error' });
    expect(res.body.detail).toContain('larger than');
    expect(ms).toBeLessThan(10_000);
    const after = await ledger();
    expect(after.slice(before.length).map((r) => [r.type, Number(r.amount)])).toEqual([
      ['charge', -1],
      ['refund', 1],
    ]);
    expect((await call(10)).status).toBe(200);
    process.stdout.write(`oversized upstream payload: refused in ${ms} ms, refunded\n`);
  });
});
