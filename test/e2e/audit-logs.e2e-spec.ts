import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { InitialSchema1764230400000 } from '../../migrations/1764230400000-InitialSchema';
import { McpServers1764316800000 } from '../../migrations/1764316800000-McpServers';
import { AuditRecorder } from '../../src/audit/application/audit-recorder.service';
import { dataSourceOptions, runMigrations } from '../../src/database/data-source';
import { createTestApp, TestApp } from '../support/create-test-app';
import { ThrowawayDatabase, throwawayDatabase } from '../support/throwaway-database';
import { createKey, managementToken, uniqueName, uniqueTenant } from '../support/factories';

const UA = 'Tollgate-E2E, "audit" suite';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RFC 4180 reader (quoted fields, doubled quotes, CRLF) — the way a spreadsheet reads the export. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || record.length > 0) throw new Error('CSV does not end with CRLF');
  return records;
}

describe('Audit logs for auditors (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  async function dbIds(tenant: string, order: 'ASC' | 'DESC' = 'ASC'): Promise<string[]> {
    const rows: { id: string }[] = await t.db.query(`SELECT id FROM audit_events WHERE tenant_id = $1 ORDER BY seq ${order}`, [tenant]);
    return rows.map((r) => r.id);
  }

  function get(url: string, token: string) {
    return t.request({ method: 'GET', url, token });
  }

  async function walk(url: string, token: string, between?: () => Promise<void>): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const sep = url.includes('?') ? '&' : '?';
      const res = await get(`${url}${sep}limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      ids.push(...res.body.data.map((e: { id: string }) => e.id));
      cursor = res.body.next_cursor;
      if (between) await between();
      if (++pages > 1000) throw new Error('pagination does not end');
    } while (cursor);
    return ids;
  }

  /**
   * A tenant where alice (admin) creates three keys, renames one, disables one
   * and revokes one, then bob (developer) creates a key; `mark` falls between
   * the first three events and the rest.
   */
  async function scriptedTenant() {
    const tenant = uniqueTenant('audit');
    const alice = managementToken({ tenantId: tenant, sub: 'alice', roles: ['admin'] });
    const bob = managementToken({ tenantId: tenant, sub: 'bob', roles: ['developer'] });
    const auditor = managementToken({ tenantId: tenant, sub: 'carol', roles: ['auditor'] });
    const headers = { 'user-agent': UA };
    const k1 = await createKey(t, alice, { name: 'billing, "prod"' });
    const k2 = await createKey(t, alice);
    const k3 = await createKey(t, alice);
    await sleep(5);
    const mark = new Date().toISOString();
    await sleep(5);
    for (const req of [
      { method: 'PATCH' as const, url: `/api/v1/api-keys/${k1.id}`, body: { name: uniqueName('renamed') } },
      { method: 'PATCH' as const, url: `/api/v1/api-keys/${k2.id}`, body: { enabled: false } },
      { method: 'DELETE' as const, url: `/api/v1/api-keys/${k3.id}` },
    ]) {
      const res = await t.request({ ...req, token: alice, headers });
      expect(res.status).toBeLessThan(300);
    }
    const k4 = await createKey(t, bob);
    return { tenant, alice, bob, auditor, keys: [k1, k2, k3, k4], mark };
  }

  describe('listing and filters', () => {
    let s: Awaited<ReturnType<typeof scriptedTenant>>;
    let denied: { id: string };
    beforeAll(async () => {
      s = await scriptedTenant();
      // An authorization denial as the MCP gateway records it.
      denied = await t.app.get(AuditRecorder).record({
        tenantId: s.tenant,
        actor: { type: 'api_key', id: s.keys[1].id },
        action: 'mcp_tool.call_denied',
        target: { type: 'mcp_tool', id: 'everything__get-env' },
        outcome: 'denied',
        metadata: { code: 'forbidden_resource' },
      });
    });

    it('shows the auditor every event of the tenant, newest first, with actor, target and outcome', async () => {
      const res = await get('/api/v1/audit-logs?limit=100', s.auditor);
      expect(res.status).toBe(200);
      expect(res.body.next_cursor).toBeNull();
      expect(res.body.data.map((e: any) => e.id)).toEqual(await dbIds(s.tenant, 'DESC'));
      expect(res.body.data.map((e: any) => e.action)).toEqual([
        'mcp_tool.call_denied',
        'api_key.created',
        'api_key.revoked',
        'api_key.disabled',
        'api_key.updated',
        'api_key.created',
        'api_key.created',
        'api_key.created',
      ]);
      const revoked = res.body.data[2];
      expect(revoked).toMatchObject({
        tenant_id: s.tenant,
        actor: { type: 'user', id: 'alice' },
        target: { type: 'api_key', id: s.keys[2].id },
        outcome: 'success',
        user_agent: UA,
      });
      expect(revoked.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(revoked.request_id).toEqual(expect.any(String));
      expect(revoked.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(revoked.prev_hash).toBe(res.body.data[3].hash);
      expect(res.body.data[7].prev_hash).toBeNull();
      expect(res.body.data[0]).toMatchObject({ id: denied.id, actor: { type: 'api_key' }, outcome: 'denied' });
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('lets an admin read the log too', async () => {
      const res = await get('/api/v1/audit-logs', s.alice);
      expect(res.status).toBe(200);
      expect(res.body.data).toHaveLength(8);
    });

    const filters: [string, (x: typeof s) => string, (x: typeof s) => string[]][] = [
      ['action', () => 'action=api_key.created', () => ['api_key.created:bob', 'api_key.created:alice', 'api_key.created:alice', 'api_key.created:alice']],
      ['an action prefix', () => 'action=api_key.*', () => ['api_key.created:bob', 'api_key.revoked:alice', 'api_key.disabled:alice', 'api_key.updated:alice', 'api_key.created:alice', 'api_key.created:alice', 'api_key.created:alice']],
      ['actor_id', () => 'actor_id=bob', () => ['api_key.created:bob']],
      ['target_id', (x) => `target_id=${x.keys[0].id}`, () => ['api_key.updated:alice', 'api_key.created:alice']],
      ['outcome', () => 'outcome=denied', (x) => [`mcp_tool.call_denied:${x.keys[1].id}`]],
      ['from', (x) => `from=${x.mark}`, (x) => [`mcp_tool.call_denied:${x.keys[1].id}`, 'api_key.created:bob', 'api_key.revoked:alice', 'api_key.disabled:alice', 'api_key.updated:alice']],
      ['to', (x) => `to=${x.mark}`, () => ['api_key.created:alice', 'api_key.created:alice', 'api_key.created:alice']],
      ['several at once', (x) => `actor_id=alice&from=${x.mark}&action=api_key.disabled`, () => ['api_key.disabled:alice']],
      ['a filter nothing matches', () => 'outcome=failure', () => []],
    ];
    it.each(filters)('narrows by %s', async (_name, query, expected) => {
      const res = await get(`/api/v1/audit-logs?${query(s)}`, s.auditor);
      expect(res.status).toBe(200);
      expect(res.body.data.map((e: any) => `${e.action}:${e.actor.id}`)).toEqual(expected(s));
    });

    it.each([
      ['an unknown outcome', 'outcome=maybe', 'outcome'],
      ['a date that is not ISO 8601', 'from=yesterday', 'from'],
      ['an end before the start', 'from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z', 'to'],
      ['a limit over 200', 'limit=201', 'limit'],
      ['a forged cursor', 'cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['an unknown parameter', 'sort=asc', 'sort'],
    ])('refuses %s with 422 validation_failed', async (_name, query, field) => {
      const res = await get(`/api/v1/audit-logs?${query}`, s.auditor);
      expect(res.status).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    it('returns one event by id, the same as in the listing', async () => {
      const list = await get('/api/v1/audit-logs?limit=100', s.auditor);
      const event = list.body.data[4];
      const res = await get(`/api/v1/audit-logs/${event.id}`, s.auditor);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(event);
    });
  });

  describe('cursor pagination', () => {
    it('with limit 2 walks every event exactly once, newest first, while events keep being appended', async () => {
      const s = await scriptedTenant();
      const before = await dbIds(s.tenant, 'DESC');
      expect(before).toHaveLength(7);
      const walked = await walk('/api/v1/audit-logs', s.auditor, async () => {
        await createKey(t, s.alice); // a newer event between every page
      });
      expect(walked).toEqual(before);
      // The events appended during the walk are on the next walk, once each, and nothing is lost.
      const after = await dbIds(s.tenant, 'DESC');
      expect(after.length).toBeGreaterThan(before.length);
      expect(await walk('/api/v1/audit-logs', s.auditor)).toEqual(after);
    });

    it('keeps filters across pages', async () => {
      const s = await scriptedTenant();
      const walked = await walk('/api/v1/audit-logs?actor_id=alice&action=api_key.created', s.auditor, async () => {
        await createKey(t, s.alice);
      });
      expect(walked).toHaveLength(3);
      const rows: { id: string }[] = await t.db.query(
        `SELECT id FROM audit_events WHERE tenant_id = $1 AND action = 'api_key.created' AND target_id = ANY($2) ORDER BY seq DESC`,
        [s.tenant, s.keys.slice(0, 3).map((k) => k.id)],
      );
      expect(walked).toEqual(rows.map((r) => r.id));
    });
  });

  describe('tenant isolation and roles', () => {
    let a: Awaited<ReturnType<typeof scriptedTenant>>;
    let b: Awaited<ReturnType<typeof scriptedTenant>>;
    beforeAll(async () => {
      a = await scriptedTenant();
      b = await scriptedTenant();
    });

    it("never lists another tenant's events", async () => {
      const res = await get('/api/v1/audit-logs?limit=200', b.auditor);
      expect(res.status).toBe(200);
      expect(res.body.data.map((e: any) => e.id)).toEqual(await dbIds(b.tenant, 'DESC'));
      expect(res.body.data.every((e: any) => e.tenant_id === b.tenant)).toBe(true);
      // A target id of tenant A gives nothing in tenant B.
      const probe = await get(`/api/v1/audit-logs?target_id=${a.keys[0].id}`, b.auditor);
      expect(probe.body.data).toEqual([]);
    });

    it.each([
      ["another tenant's event", () => 'other'],
      ['an unknown uuid', () => randomUUID()],
      ['a non-uuid', () => 'not-a-uuid'],
    ])('answers 404 not_found for %s', async (_name, which) => {
      const id = which() === 'other' ? (await dbIds(a.tenant))[0] : which();
      const res = await get(`/api/v1/audit-logs/${id}`, b.auditor);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 404, code: 'not_found' });
      // the owner can read it
      if (which() === 'other') expect((await get(`/api/v1/audit-logs/${id}`, a.auditor)).status).toBe(200);
    });

    it("exports and verifies only the caller's tenant", async () => {
      const exp = await get('/api/v1/audit-logs/export', b.auditor);
      const ids = exp.text.trim().split('\n').map((l) => JSON.parse(l).id);
      expect(ids).toEqual(await dbIds(b.tenant));
      const v = await get('/api/v1/audit-logs/verify', b.auditor);
      expect(v.body).toMatchObject({ valid: true, checked: ids.length });
    });

    const routes = ['/api/v1/audit-logs', '/api/v1/audit-logs/export', '/api/v1/audit-logs/verify', '/api/v1/audit-logs/ID'];
    it.each(routes.flatMap((r) => [[r, 'developer'] as const, [r, 'service'] as const]))(
      'GET %s is 403 forbidden for the %s role',
      async (route, role) => {
        const id = (await dbIds(a.tenant))[0];
        const token = managementToken({ tenantId: a.tenant, sub: 'dave', roles: [role] });
        const res = await get(route.replace('ID', id), token);
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden');
        expect(res.body.data).toBeUndefined();
        expect(res.text).not.toMatch(/[0-9a-f]{64}/); // no event content, no hash
      },
    );

    it.each(routes)('GET %s is 401 without a token', async (route) => {
      const res = await t.request({ method: 'GET', url: route.replace('ID', randomUUID()) });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthenticated');
    });
  });

  describe('export', () => {
    let s: Awaited<ReturnType<typeof scriptedTenant>>;
    beforeAll(async () => {
      s = await scriptedTenant();
    });

    it('streams NDJSON: one parseable line per event, oldest first, as a download', async () => {
      const res = await get('/api/v1/audit-logs/export', s.auditor);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="audit-logs-[\w-]+\.ndjson"$/);
      expect(res.text.endsWith('\n')).toBe(true);
      const lines = res.text.slice(0, -1).split('\n');
      const ids = await dbIds(s.tenant);
      expect(lines).toHaveLength(ids.length);
      const events = lines.map((l) => JSON.parse(l));
      expect(events.map((e) => e.id)).toEqual(ids);
      // Each line is the API's event, linked to the one before it.
      const one = await get(`/api/v1/audit-logs/${ids[3]}`, s.auditor);
      expect(events[3]).toEqual(one.body);
      events.forEach((e, i) => expect(e.prev_hash).toBe(i === 0 ? null : events[i - 1].hash));
    });

    it('applies the filters', async () => {
      const res = await get('/api/v1/audit-logs/export?action=api_key.created&actor_id=alice', s.auditor);
      const events = res.text.trim().split('\n').map((l) => JSON.parse(l));
      expect(events.map((e) => e.target.id)).toEqual(s.keys.slice(0, 3).map((k) => k.id));
    });

    it('exports more events than one page holds, each once', async () => {
      const tenant = uniqueTenant('bulk');
      const recorder = t.app.get(AuditRecorder);
      for (let i = 0; i < 1203; i += 100) {
        await Promise.all(
          Array.from({ length: Math.min(100, 1203 - i) }, (_, j) =>
            recorder.record({ tenantId: tenant, actor: { type: 'system', id: 'seed' }, action: 'test.bulk', metadata: { n: i + j } }),
          ),
        );
      }
      const auditor = managementToken({ tenantId: tenant, roles: ['auditor'] });
      const res = await get('/api/v1/audit-logs/export', auditor);
      const events = res.text.trim().split('\n').map((l) => JSON.parse(l));
      expect(events).toHaveLength(1203);
      expect(new Set(events.map((e) => e.id)).size).toBe(1203);
      expect(events.map((e) => e.id)).toEqual(await dbIds(tenant));
      const csv = parseCsv((await get('/api/v1/audit-logs/export?format=csv', auditor)).text);
      expect(csv).toHaveLength(1204);
      const v = await get('/api/v1/audit-logs/verify', auditor);
      expect(v.body).toEqual({ valid: true, checked: 1203, first_broken_id: null, head_hash: events[1202].hash });
    });

    it('with format=csv has a header row and quotes commas and quotes', async () => {
      const res = await get('/api/v1/audit-logs/export?format=csv', s.auditor);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="audit-logs-[\w-]+\.csv"$/);
      const records = parseCsv(res.text);
      const [header, ...rows] = records;
      expect(header).toEqual([
        'id', 'occurred_at', 'tenant_id', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id',
        'outcome', 'ip', 'user_agent', 'request_id', 'metadata', 'prev_hash', 'hash',
      ]);
      expect(rows.map((r) => r[0])).toEqual(await dbIds(s.tenant));
      for (const r of rows) expect(r).toHaveLength(header.length);
      const col = (name: string) => header.indexOf(name);
      // The first key's name holds a comma and quotes; the user agent too.
      const created = rows[0];
      expect(created[col('action')]).toBe('api_key.created');
      expect(JSON.parse(created[col('metadata')]).name).toBe('billing, "prod"');
      expect(res.text).toContain('""billing, \\""prod\\""""');
      const patched = rows.find((r) => r[col('action')] === 'api_key.updated')!;
      expect(patched[col('user_agent')]).toBe(UA);
      expect(patched[col('target_id')]).toBe(s.keys[0].id);
    });

    it('refuses an unknown format', async () => {
      const res = await get('/api/v1/audit-logs/export?format=xml', s.auditor);
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
    });
  });

  describe('tamper evidence', () => {
    it('verify recomputes the chain: valid for an untouched log', async () => {
      const s = await scriptedTenant();
      const res = await get('/api/v1/audit-logs/verify', s.auditor);
      expect(res.status).toBe(200);
      const ids = await dbIds(s.tenant);
      const [head]: { hash: string }[] = await t.db.query(`SELECT hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`, [s.tenant]);
      expect(res.body).toEqual({ valid: true, checked: ids.length, first_broken_id: null, head_hash: head.hash });
    });

    it('is empty and valid for a tenant without events', async () => {
      const res = await get('/api/v1/audit-logs/verify', managementToken({ tenantId: uniqueTenant(), roles: ['auditor'] }));
      expect(res.body).toEqual({ valid: true, checked: 0, first_broken_id: null, head_hash: null });
    });

    async function asSuperuser(sql: string, params: unknown[]) {
      await t.db.transaction(async (m) => {
        await m.query(`ALTER TABLE audit_events DISABLE TRIGGER trg_audit_events_append_only`);
        await m.query(sql, params);
        await m.query(`ALTER TABLE audit_events ENABLE TRIGGER trg_audit_events_append_only`);
      });
    }

    it('names the altered event after a superuser rewrites its metadata', async () => {
      const s = await scriptedTenant();
      const ids = await dbIds(s.tenant);
      await asSuperuser(`UPDATE audit_events SET metadata = '{"name":"innocent"}' WHERE id = $1`, [ids[3]]);
      const res = await get('/api/v1/audit-logs/verify', s.auditor);
      expect(res.body).toEqual({ valid: false, checked: 4, first_broken_id: ids[3], head_hash: null });
      // Other tenants' chains are unaffected.
      const other = await scriptedTenant();
      expect((await get('/api/v1/audit-logs/verify', other.auditor)).body.valid).toBe(true);
    });

    it('names the event after one a superuser deleted', async () => {
      const s = await scriptedTenant();
      const ids = await dbIds(s.tenant);
      await asSuperuser(`DELETE FROM audit_events WHERE id = $1`, [ids[2]]);
      const res = await get('/api/v1/audit-logs/verify', s.auditor);
      expect(res.body).toMatchObject({ valid: false, first_broken_id: ids[3] });
    });

    it('names the altered event even when its own hash was recomputed by hand', async () => {
      const s = await scriptedTenant();
      const ids = await dbIds(s.tenant);
      await asSuperuser(`UPDATE audit_events SET actor_id = 'mallory', hash = encode(sha256('forged'::bytea), 'hex') WHERE id = $1`, [ids[1]]);
      const res = await get('/api/v1/audit-logs/verify', s.auditor);
      expect(res.body).toMatchObject({ valid: false, first_broken_id: ids[1] });
    });

    it('keeps one valid chain under 20 concurrent key creations in a tenant', async () => {
      const tenant = uniqueTenant('race');
      const admin = managementToken({ tenantId: tenant, roles: ['admin'] });
      const auditor = managementToken({ tenantId: tenant, roles: ['auditor'] });
      const created = await Promise.all(Array.from({ length: 20 }, () => createKey(t, admin)));
      expect(new Set(created.map((k) => k.id)).size).toBe(20);
      const res = await get('/api/v1/audit-logs/verify', auditor);
      expect(res.body).toMatchObject({ valid: true, checked: 20, first_broken_id: null });
    });

    it('stays valid when what it records is not Unicode text (a tool name cut inside a surrogate pair, a lone surrogate, U+0000)', async () => {
      const tenant = uniqueTenant('text');
      const admin = managementToken({ tenantId: tenant, roles: ['admin'] });
      const key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['fake__*'] } })).token;
      // Refused by scope and audited with the name cut to 128 characters: here, inside the emoji's pair.
      const name = 'x'.repeat(127) + '\u{1F600}';
      const rpc = await t.request({
        method: 'POST',
        url: '/mcp',
        headers: { 'x-api-key': key, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } },
      });
      expect(rpc.status).toBe(200);
      const recorder = t.app.get(AuditRecorder);
      await recorder.record({ tenantId: tenant, actor: { type: 'user', id: 'odd\ud800' }, action: 'test.text', metadata: { v: 'a\udc00\u0000b' } });
      const by = Date.now() + 5_000;
      let denied: { target_id: string }[] = [];
      while (denied.length === 0 && Date.now() < by) {
        denied = await t.db.query(`SELECT target_id FROM audit_events WHERE tenant_id = $1 AND action = 'mcp_tool.call_denied'`, [tenant]);
        if (denied.length === 0) await sleep(50);
      }
      expect(denied).toEqual([{ target_id: 'x'.repeat(127) }]);
      const res = await get('/api/v1/audit-logs/verify', managementToken({ tenantId: tenant, roles: ['auditor'] }));
      expect(res.body).toMatchObject({ valid: true, checked: 3, first_broken_id: null });
    });

    it('keeps one valid chain under 50 concurrent appends outside any caller transaction', async () => {
      const tenant = uniqueTenant('race');
      const recorder = t.app.get(AuditRecorder);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          recorder.record({ tenantId: tenant, actor: { type: 'system', id: 'race' }, action: 'test.race', metadata: { i } }),
        ),
      );
      const res = await get('/api/v1/audit-logs/verify', managementToken({ tenantId: tenant, roles: ['auditor'] }));
      expect(res.body).toMatchObject({ valid: true, checked: 50, first_broken_id: null });
    });
  });

  describe('upgrade of a database holding events from before the hash chain', () => {
    let database: ThrowawayDatabase;
    let url: string;
    let upgraded: TestApp | undefined;

    beforeAll(async () => {
      database = await throwawayDatabase('audit_upgrade');
      url = database.url;
    });

    afterAll(async () => {
      await upgraded?.close();
      await database?.drop();
    });

    it('chains the existing events per tenant so verify is valid after the migration', async () => {
      const old = new DataSource(dataSourceOptions(url, { migrations: [InitialSchema1764230400000, McpServers1764316800000], entities: [] }));
      await old.initialize();
      await old.runMigrations({ transaction: 'each' });
      // Two interleaved tenants, more rows than one migration batch (1,000) and more than
      // nine per tenant (a text sort of seq would misorder them), database-default
      // timestamps (microseconds), NULLs and non-ASCII metadata.
      await old.query(
        `INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, outcome, ip, user_agent, request_id, metadata)
         SELECT gen_random_uuid(), CASE WHEN g % 3 = 0 THEN 'old-a' ELSE 'old-b' END, 'user', 'alice', 'api_key.created',
                CASE WHEN g % 5 = 0 THEN NULL ELSE 'api_key' END, CASE WHEN g % 5 = 0 THEN NULL ELSE 'k' || g END,
                'success', CASE WHEN g % 2 = 0 THEN '::1' END, NULL, 'r' || g,
                jsonb_build_object('i', g, 'nested', jsonb_build_object('z', 1, 'a', jsonb_build_array(g, 'x')), 'é', 'ü', 'f', g / 3.0)
         FROM generate_series(1, 1205) AS g`,
      );
      await old.destroy();
      await runMigrations(url);
      upgraded = await createTestApp({ DATABASE_URL: url });
      for (const [tenant, count] of [['old-a', 401], ['old-b', 804]] as const) {
        const res = await upgraded.request({ method: 'GET', url: '/api/v1/audit-logs/verify', token: managementToken({ tenantId: tenant, roles: ['auditor'] }) });
        expect(res.body).toMatchObject({ valid: true, checked: count, first_broken_id: null });
      }
      // New events continue the migrated chain.
      await upgraded.app.get(AuditRecorder).record({ tenantId: 'old-a', actor: { type: 'system', id: 's' }, action: 'test.after_upgrade' });
      const res = await upgraded.request({ method: 'GET', url: '/api/v1/audit-logs/verify', token: managementToken({ tenantId: 'old-a', roles: ['auditor'] }) });
      expect(res.body).toMatchObject({ valid: true, checked: 402 });
      await expect(upgraded.db.query(`UPDATE audit_events SET actor_id = 'x'`)).rejects.toThrow(/append-only/);
    });
  });
});
