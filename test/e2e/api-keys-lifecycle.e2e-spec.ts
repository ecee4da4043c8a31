import { APIKeyRepository } from '../../src/api-keys/domain/api-key.repository';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueName, uniqueTenant, verifyKey } from '../support/factories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('API key lifecycle (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  function setup() {
    const tenant = uniqueTenant();
    const admin = managementToken({ tenantId: tenant, sub: 'admin-1', roles: ['admin'] });
    return { tenant, admin };
  }

  async function countRows(tenant: string): Promise<number> {
    const [{ n }] = await t.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1`, [tenant]);
    return n;
  }

  describe('create', () => {
    it('returns 201 with the token once, no-store, and the key fields', async () => {
      const { tenant, admin } = setup();
      const name = uniqueName('create');
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name, permission_scope: { mcp_tool_ids: ['github__*'] }, metadata: { team: 'infra' } },
      });
      expect(res.status).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatchObject({
        name,
        tenant_id: tenant,
        user_id: 'admin-1',
        status: 'active',
        enabled: true,
        expires_at: null,
        revoked_at: null,
        metadata: { team: 'infra' },
      });
      expect(res.body.permission_scope.mcp_tool_ids).toEqual(['github__*']);
      expect(res.body.token).toMatch(/^tg_live_[A-Za-z0-9]{38}$/);
      expect(res.body.token.startsWith(res.body.start)).toBe(true);
      expect(res.body.key_hash).toBeUndefined();

      const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${res.body.id}`, token: admin });
      expect(got.status).toBe(200);
      expect(got.body.token).toBeUndefined();
      expect(got.text).not.toContain(res.body.token);
      const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
      expect(list.text).not.toContain(res.body.token);
      expect(await countRows(tenant)).toBe(1);
    });
  });

  describe('list', () => {
    it('chains cursor pages with no duplicates and no gaps; the last next_cursor is null', async () => {
      const { admin } = setup();
      const created: string[] = [];
      for (let i = 0; i < 5; i++) created.push((await createKey(t, admin)).id);

      const seen: string[] = [];
      const pageSizes: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/api/v1/api-keys?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await t.request({ method: 'GET', url, token: admin });
        expect(res.status).toBe(200);
        pageSizes.push(res.body.data.length);
        seen.push(...res.body.data.map((k: { id: string }) => k.id));
        cursor = res.body.next_cursor;
        pages++;
      } while (cursor && pages < 10);

      expect(pageSizes).toEqual([2, 2, 1]);
      expect(cursor).toBeNull();
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual([...created].sort());
    });

    it('is newest first', async () => {
      const { admin } = setup();
      const a = await createKey(t, admin);
      await sleep(5);
      const b = await createKey(t, admin);
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys', token: admin });
      expect(res.body.data.map((k: { id: string }) => k.id)).toEqual([b.id, a.id]);
    });

    it('refuses a forged cursor with 422', async () => {
      const { admin } = setup();
      const res = await t.request({ method: 'GET', url: '/api/v1/api-keys?cursor=not-a-cursor', token: admin });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
    });

    it('filters by user_id, status and name', async () => {
      const { admin } = setup();
      const a1 = await createKey(t, admin, { user_id: 'user-a', name: uniqueName('alpha') });
      const a2 = await createKey(t, admin, { user_id: 'user-a', name: uniqueName('beta') });
      const b1 = await createKey(t, admin, { user_id: 'user-b', name: uniqueName('gamma') });

      const ids = (res: { body: { data: { id: string }[] } }) => res.body.data.map((k) => k.id).sort();

      const byUser = await t.request({ method: 'GET', url: '/api/v1/api-keys?user_id=user-a', token: admin });
      expect(byUser.status).toBe(200);
      expect(ids(byUser)).toEqual([a1.id, a2.id].sort());

      const dis = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${a2.id}`, token: admin, body: { enabled: false } });
      expect(dis.status).toBe(200);
      const rev = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${b1.id}`, token: admin });
      expect(rev.status).toBe(204);

      const disabled = await t.request({ method: 'GET', url: '/api/v1/api-keys?status=disabled', token: admin });
      expect(ids(disabled)).toEqual([a2.id]);
      const active = await t.request({ method: 'GET', url: '/api/v1/api-keys?status=active', token: admin });
      expect(ids(active)).toEqual([a1.id]);
      const revoked = await t.request({ method: 'GET', url: '/api/v1/api-keys?status=revoked', token: admin });
      expect(ids(revoked)).toEqual([b1.id]);

      const byName = await t.request({ method: 'GET', url: `/api/v1/api-keys?name=${encodeURIComponent(a1.name)}`, token: admin });
      expect(ids(byName)).toEqual([a1.id]);
      const byPart = await t.request({ method: 'GET', url: '/api/v1/api-keys?name=gamma', token: admin });
      expect(ids(byPart)).toEqual([b1.id]);

      const bad = await t.request({ method: 'GET', url: '/api/v1/api-keys?status=bogus', token: admin });
      expect(bad.status).toBe(422);
    });
  });

  describe('get', () => {
    it('returns the key without its secret, 404 problem+json for unknown ids', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ id: k.id, name: k.name, start: k.start, status: 'active' });
      expect(got.body.token).toBeUndefined();

      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
        const res = await t.request({ method: 'GET', url: `/api/v1/api-keys/${id}`, token: admin });
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.code).toBe('not_found');
      }
    });
  });

  describe('patch', () => {
    it('updates name, expires_at, permission_scope and metadata and persists them', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin, { metadata: { a: 1 } });
      const newName = uniqueName('renamed');
      const expires = new Date(Date.now() + 3600_000).toISOString();
      const res = await t.request({
        method: 'PATCH',
        url: `/api/v1/api-keys/${k.id}`,
        token: admin,
        body: {
          name: newName,
          expires_at: expires,
          permission_scope: { mcp_tool_ids: ['github__*'], deny: { mcp_tool_ids: ['github__delete*'] } },
          metadata: { b: 2 },
        },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: k.id, name: newName, expires_at: expires, metadata: { b: 2 }, status: 'active' });
      expect(res.body.permission_scope.mcp_tool_ids).toEqual(['github__*']);
      expect(res.body.permission_scope.deny.mcp_tool_ids).toEqual(['github__delete*']);

      const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(got.body).toMatchObject({ name: newName, expires_at: expires, metadata: { b: 2 } });
      const [row] = await t.db.query(`SELECT name, expires_at, permission_scope, metadata FROM api_keys WHERE id=$1`, [k.id]);
      expect(row.name).toBe(newName);
      expect(new Date(row.expires_at).toISOString()).toBe(expires);
      expect(row.metadata).toEqual({ b: 2 });
      expect(row.permission_scope.mcp_tool_ids).toEqual(['github__*']);

      // the new scope is what verify applies
      const v = await verifyKey(t, admin, { key: k.token, resource: { type: 'mcp_tool', id: 'github__delete_repo' } });
      expect(v.body).toMatchObject({ valid: false, code: 'forbidden_resource', matched_rule: 'deny.mcp_tool_ids:github__delete*' });

      // expires_at: null removes the expiry
      const cleared = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { expires_at: null } });
      expect(cleared.status).toBe(200);
      expect(cleared.body.expires_at).toBeNull();
    });

    it('refuses a past expires_at with 422 and leaves the row unchanged', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const [before] = await t.db.query(`SELECT * FROM api_keys WHERE id=$1`, [k.id]);
      const res = await t.request({
        method: 'PATCH',
        url: `/api/v1/api-keys/${k.id}`,
        token: admin,
        body: { expires_at: new Date(Date.now() - 60_000).toISOString() },
      });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      const [after] = await t.db.query(`SELECT * FROM api_keys WHERE id=$1`, [k.id]);
      expect(after).toEqual(before);
    });

    it('disables (status disabled, verify disabled_key) and enables again', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const off = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: false } });
      expect(off.status).toBe(200);
      expect(off.body).toMatchObject({ enabled: false, status: 'disabled' });
      expect((await verifyKey(t, admin, { key: k.token })).body).toMatchObject({ valid: false, code: 'disabled_key' });
      const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(got.body.status).toBe('disabled');

      const on = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: true } });
      expect(on.status).toBe(200);
      expect(on.body).toMatchObject({ enabled: true, status: 'active' });
      expect((await verifyKey(t, admin, { key: k.token })).body).toMatchObject({ valid: true, code: 'valid' });
    });
  });

  describe('delete', () => {
    it('revokes at once (204), is idempotent, and a revoked key cannot be changed', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const del = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(del.status).toBe(204);
      expect(del.text).toBe('');

      const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(got.status).toBe(200);
      expect(got.body.status).toBe('revoked');
      expect(got.body.revoked_at).not.toBeNull();
      expect((await verifyKey(t, admin, { key: k.token })).body).toMatchObject({ valid: false, code: 'revoked_key', key_id: k.id });

      const again = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: admin });
      expect(again.status).toBe(204);
      const [row] = await t.db.query(`SELECT revoked_at FROM api_keys WHERE id=$1`, [k.id]);
      expect(new Date(row.revoked_at).toISOString()).toBe(got.body.revoked_at);

      const patch = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: admin, body: { enabled: true } });
      expect(patch.status).toBe(409);
      expect(patch.body.code).toBe('invalid_state');
      expect((await verifyKey(t, admin, { key: k.token })).body.code).toBe('revoked_key');
    });

    it('a key lookup that read the row before the revocation and ends after it does not cache the revoked key', async () => {
      const { admin } = setup();
      const key = await createKey(t, admin);
      const tools = (k: string) => t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': k } });
      const repo = t.app.get(APIKeyRepository);
      const original = repo.findByHash.bind(repo);
      let gate!: () => void;
      const gated = new Promise<void>((r) => (gate = r));
      // The first lookup reads the (active) row, then is held until after the revocation and its eviction.
      (repo as unknown as { findByHash: APIKeyRepository['findByHash'] }).findByHash = async (h: string) => {
        const row = await original(h);
        await gated;
        return row;
      };
      try {
        const inFlight = tools(key.token);
        await sleep(100);
        (repo as unknown as { findByHash: APIKeyRepository['findByHash'] }).findByHash = original;
        expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, token: admin })).status).toBe(204);
        gate();
        // The request that started before the revocation may pass …
        expect((await inFlight).status).toBe(200);
        // … but the revoked key is not cached as active: the next request is refused at once.
        const after = await tools(key.token);
        expect(after.status).toBe(401);
        expect(after.body.code).toBe('revoked_key');
      } finally {
        gate();
        delete (repo as unknown as { findByHash?: unknown }).findByHash;
      }
    });
  });

  describe('rotate', () => {
    it('keeps old and new secrets valid during the grace period, then only the new one', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin, { metadata: { owner: 'ci' } });
      const res = await t.request({
        method: 'POST',
        url: `/api/v1/api-keys/${k.id}/rotate`,
        token: admin,
        body: { grace_period_seconds: 2 },
      });
      expect(res.status).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body.token).toMatch(/^tg_live_[A-Za-z0-9]{38}$/);
      expect(res.body.token).not.toBe(k.token);
      expect(res.body.id).not.toBe(k.id);
      expect(res.body).toMatchObject({ name: k.name, rotated_from: k.id, status: 'active', metadata: { owner: 'ci' } });
      expect(res.body.previous_key).toMatchObject({ id: k.id });
      expect(res.body.previous_key.grace_until).not.toBeNull();

      const oldV = await verifyKey(t, admin, { key: k.token });
      const newV = await verifyKey(t, admin, { key: res.body.token });
      expect(oldV.body).toMatchObject({ valid: true, key_id: k.id });
      expect(newV.body).toMatchObject({ valid: true, key_id: res.body.id });

      await sleep(2300);
      expect((await verifyKey(t, admin, { key: k.token })).body).toMatchObject({ valid: false, code: 'expired_key' });
      expect((await verifyKey(t, admin, { key: res.body.token })).body).toMatchObject({ valid: true, code: 'valid' });
    });

    it('with grace 0 the old secret is expired at once; rotating the old key again is 409', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const res = await t.request({
        method: 'POST',
        url: `/api/v1/api-keys/${k.id}/rotate`,
        token: admin,
        body: { grace_period_seconds: 0 },
      });
      expect(res.status).toBe(201);
      expect((await verifyKey(t, admin, { key: k.token })).body).toMatchObject({ valid: false, code: 'expired_key' });
      expect((await verifyKey(t, admin, { key: res.body.token })).body).toMatchObject({ valid: true });

      const twice = await t.request({
        method: 'POST',
        url: `/api/v1/api-keys/${k.id}/rotate`,
        token: admin,
        body: { grace_period_seconds: 0 },
      });
      expect(twice.status).toBe(409);
      expect(twice.body.code).toBe('invalid_state');
      expect(twice.body.token).toBeUndefined();
      const [{ n }] = await t.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE rotated_from=$1`, [k.id]);
      expect(n).toBe(1);
    });

    const rotate = (admin: string, id: string, grace: number) =>
      t.request({ method: 'POST', url: `/api/v1/api-keys/${id}/rotate`, token: admin, body: { grace_period_seconds: grace } });

    it('at most two secrets of a chain work at once: rotating the successor ends the grace period of the key it replaced', async () => {
      const { tenant, admin } = setup();
      const a = await createKey(t, admin);
      const b = await rotate(admin, a.id, 3600);
      const c = await rotate(admin, b.body.id, 3600);
      expect(c.status).toBe(201);
      expect((await verifyKey(t, admin, { key: a.token })).body).toMatchObject({ valid: false, code: 'expired_key' });
      expect((await verifyKey(t, admin, { key: b.body.token })).body).toMatchObject({ valid: true });
      expect((await verifyKey(t, admin, { key: c.body.token })).body).toMatchObject({ valid: true });
      const [event] = await t.db.query(
        `SELECT metadata FROM audit_events WHERE tenant_id = $1 AND target_id = $2 AND action = 'api_key.updated'`,
        [tenant, a.id],
      );
      expect(event.metadata).toMatchObject({ changed: ['grace_until'], reason: 'rotated_again', successor_id: b.body.id });
    });

    it('revoking the newest key revokes every key of its chain still in its grace period', async () => {
      const { admin } = setup();
      const a = await createKey(t, admin);
      const b = await rotate(admin, a.id, 3600);
      // A chain left by an earlier version: two keys in their grace period at once.
      const c = await rotate(admin, b.body.id, 3600);
      await t.db.query(`UPDATE api_keys SET grace_until = now() + interval '1 hour' WHERE id = $1`, [a.id]);
      expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${c.body.id}`, token: admin })).status).toBe(204);
      for (const token of [a.token, b.body.token, c.body.token]) {
        expect((await verifyKey(t, admin, { key: token })).body).toMatchObject({ valid: false, code: 'revoked_key' });
      }
    });

    it('disabling or re-scoping the new key ends the grace period of the old one (its secret would keep the access taken away)', async () => {
      const { admin } = setup();
      const a = await createKey(t, admin);
      const b = await rotate(admin, a.id, 3600);
      expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${b.body.id}`, token: admin, body: { enabled: false } })).status).toBe(200);
      expect((await verifyKey(t, admin, { key: a.token })).body).toMatchObject({ valid: false, code: 'expired_key' });
      // Re-enabling the new key does not bring the old secret back.
      expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${b.body.id}`, token: admin, body: { enabled: true } })).status).toBe(200);
      expect((await verifyKey(t, admin, { key: a.token })).body).toMatchObject({ valid: false, code: 'expired_key' });

      const x = await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['*'] } });
      const y = await rotate(admin, x.id, 3600);
      const narrowed = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${y.body.id}`, token: admin, body: { permission_scope: { mcp_tool_ids: ['github__*'] } } });
      expect(narrowed.status).toBe(200);
      expect((await verifyKey(t, admin, { key: x.token })).body).toMatchObject({ valid: false, code: 'expired_key' });
      // A rename leaves the old secret its grace period.
      const p = await createKey(t, admin);
      const q = await rotate(admin, p.id, 3600);
      expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${q.body.id}`, token: admin, body: { name: uniqueName('renamed') } })).status).toBe(200);
      expect((await verifyKey(t, admin, { key: p.token })).body).toMatchObject({ valid: true });
    });

    it('rotating a key still in its grace period is 409 as well', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const first = await t.request({ method: 'POST', url: `/api/v1/api-keys/${k.id}/rotate`, token: admin, body: { grace_period_seconds: 300 } });
      expect(first.status).toBe(201);
      const second = await t.request({ method: 'POST', url: `/api/v1/api-keys/${k.id}/rotate`, token: admin, body: { grace_period_seconds: 300 } });
      expect(second.status).toBe(409);
      expect(second.body.code).toBe('invalid_state');
    });
  });

  describe('usage', () => {
    it('has the usage shape with zero counters', async () => {
      const { admin } = setup();
      const k = await createKey(t, admin);
      const res = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}/usage`, token: admin });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ requests_count: 0, tokens_used: 0, credits_used: 0, last_used_at: null });
      expect(Object.keys(res.body)).toEqual(expect.arrayContaining(['requests_count', 'tokens_used', 'credits_used', 'last_used_at']));

      const unknown = await t.request({
        method: 'GET',
        url: '/api/v1/api-keys/00000000-0000-4000-8000-000000000000/usage',
        token: admin,
      });
      expect(unknown.status).toBe(404);
    });
  });

  describe('names', () => {
    it('refuses a duplicate live name with 409 duplicate_name; revoking frees the name', async () => {
      const { tenant, admin } = setup();
      const name = uniqueName('dup');
      const first = await createKey(t, admin, { name });
      const dup = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name, permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('duplicate_name');
      expect(dup.body.token).toBeUndefined();
      expect(await countRows(tenant)).toBe(1);

      // renaming another key onto the live name is refused too
      const other = await createKey(t, admin);
      const rename = await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${other.id}`, token: admin, body: { name } });
      expect(rename.status).toBe(409);
      expect(rename.body.code).toBe('duplicate_name');

      expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${first.id}`, token: admin })).status).toBe(204);
      const again = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name, permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(again.status).toBe(201);
      expect(again.body.name).toBe(name);
    });

    it('a refused duplicate writes no key hash or parameters to the console', async () => {
      const { admin } = setup();
      const name = uniqueName('dup-log');
      await createKey(t, admin, { name });
      const written: string[] = [];
      const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
        jest.spyOn(console, m).mockImplementation((...args: unknown[]) => {
          written.push(args.map(String).join(' '));
        }),
      );
      const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
        written.push(String(chunk));
        return true;
      });
      try {
        const dup = await t.request({
          method: 'POST',
          url: '/api/v1/api-keys',
          token: admin,
          body: { name, permission_scope: { mcp_tool_ids: ['*'] } },
        });
        expect(dup.status).toBe(409);
      } finally {
        spies.forEach((s) => s.mockRestore());
        out.mockRestore();
      }
      expect(written.filter((w) => /[0-9a-f]{64}/.test(w))).toEqual([]);
    });

    it('the same name is fine in another tenant', async () => {
      const a = setup();
      const b = setup();
      const name = uniqueName('shared');
      await createKey(t, a.admin, { name });
      const k = await createKey(t, b.admin, { name });
      expect(k.name).toBe(name);
    });
  });

  describe('per-tenant key limit', () => {
    let limited: TestApp;
    beforeAll(async () => {
      limited = await createTestApp({ KEYS_MAX_PER_TENANT: '3' });
    });
    afterAll(async () => {
      await limited.close();
    });

    it('refuses the 4th live key with 403 key_limit_reached and inserts no row; revoking frees a slot', async () => {
      const tenant = uniqueTenant();
      const admin = managementToken({ tenantId: tenant });
      const keys = [];
      for (let i = 0; i < 3; i++) keys.push(await createKey(limited, admin));

      const fourth = await limited.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(fourth.status).toBe(403);
      expect(fourth.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(fourth.body.code).toBe('key_limit_reached');
      expect(fourth.body.token).toBeUndefined();
      const [{ n }] = await limited.db.query(`SELECT count(*)::int AS n FROM api_keys WHERE tenant_id=$1`, [tenant]);
      expect(n).toBe(3);
      const audits = await limited.db.query(
        `SELECT count(*)::int AS n FROM audit_events WHERE tenant_id=$1 AND action='api_key.created'`,
        [tenant],
      );
      expect(audits[0].n).toBe(3);

      // a disabled key still counts; a revoked one does not
      await limited.request({ method: 'PATCH', url: `/api/v1/api-keys/${keys[0].id}`, token: admin, body: { enabled: false } });
      const stillFull = await limited.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(stillFull.status).toBe(403);
      await limited.request({ method: 'DELETE', url: `/api/v1/api-keys/${keys[1].id}`, token: admin });
      const freed = await limited.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: admin,
        body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
      });
      expect(freed.status).toBe(201);
    });

    it('a rotation at the limit succeeds (the key in its grace period no longer counts) and leaves the tenant at the limit', async () => {
      const tenant = uniqueTenant();
      const admin = managementToken({ tenantId: tenant });
      const keys = [];
      for (let i = 0; i < 3; i++) keys.push(await createKey(limited, admin));
      const rotated = await limited.request({ method: 'POST', url: `/api/v1/api-keys/${keys[0].id}/rotate`, token: admin, body: { grace_period_seconds: 3600 } });
      expect(rotated.status).toBe(201);
      const fourth = await limited.request({ method: 'POST', url: '/api/v1/api-keys', token: admin, body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } } });
      expect(fourth.status).toBe(403);
      expect(fourth.body.code).toBe('key_limit_reached');
      // Rotating again and again never adds a third working secret to the chain.
      const again = await limited.request({ method: 'POST', url: `/api/v1/api-keys/${rotated.body.id}/rotate`, token: admin, body: { grace_period_seconds: 3600 } });
      expect(again.status).toBe(201);
      const working = [];
      for (const token of [keys[0].token, rotated.body.token, again.body.token]) working.push((await verifyKey(limited, admin, { key: token })).body.valid);
      expect(working).toEqual([false, true, true]);
    });
  });
});
