import { AuditRecorder } from '../../src/audit/application/audit-recorder.service';
import { createTestApp, TestApp } from '../support/create-test-app';
import { managementToken, uniqueTenant } from '../support/factories';

const TOTAL = 1_000;
const BATCH = 20;

/** Issue 5: cursor pagination over 1,000 events returns each exactly once. */
describe('Audit log pagination over 1,000 events (e2e)', () => {
  let t: TestApp;
  const tenant = uniqueTenant('audit-1k');
  const auditor = managementToken({ tenantId: tenant, sub: 'audrey', roles: ['auditor'] });

  beforeAll(async () => {
    t = await createTestApp();
    const recorder = t.app.get(AuditRecorder);
    for (let start = 0; start < TOTAL; start += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, (_, i) =>
          recorder.record({
            tenantId: tenant,
            actor: { type: 'user', id: 'loader' },
            action: 'api_key.updated',
            target: { type: 'api_key', id: `target-${start + i}` },
            metadata: { n: start + i },
          }),
        ),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('walking next_cursor with limit=100 returns all 1,000 ids exactly once, newest first in seq order', async () => {
    const inDb: { id: string }[] = await t.db.query(`SELECT id FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC`, [tenant]);
    expect(inDb).toHaveLength(TOTAL);

    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await t.request({
        method: 'GET',
        url: `/api/v1/audit-logs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        token: auditor,
      });
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(100);
      ids.push(...res.body.data.map((e: { id: string }) => e.id));
      cursor = res.body.next_cursor;
      if (++pages > 20) throw new Error('pagination does not end');
    } while (cursor);

    expect(pages).toBeGreaterThanOrEqual(10);
    expect(ids).toHaveLength(TOTAL);
    expect(new Set(ids).size).toBe(TOTAL);
    expect(ids).toEqual(inDb.map((r) => r.id));
  });

  it('GET /api/v1/audit-logs/export returns 1,000 NDJSON lines in chain (seq) order', async () => {
    const res = await t.request({ method: 'GET', url: '/api/v1/audit-logs/export', token: auditor });
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^application\/x-ndjson/);
    expect(res.text.endsWith('\n')).toBe(true);
    const lines = res.text.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(TOTAL);
    const exported = lines.map((l) => (JSON.parse(l) as { id: string }).id);
    const inDb: { id: string }[] = await t.db.query(`SELECT id FROM audit_events WHERE tenant_id = $1 ORDER BY seq ASC`, [tenant]);
    expect(exported).toEqual(inDb.map((r) => r.id));
  });
});
