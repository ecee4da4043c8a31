import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueName, uniqueTenant } from '../support/factories';

const UA = 'tollgate-e2e/1.0 (audit)';

describe('Audit events for key state changes (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  function auditRows(tenant: string): Promise<any[]> {
    return t.db.query('SELECT * FROM audit_events WHERE tenant_id=$1 ORDER BY seq', [tenant]);
  }

  it('records created, updated, disabled, enabled, rotated, revoked with actor, target, request and no secret', async () => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant, sub: 'alice', roles: ['admin'] });
    const headers = { 'user-agent': UA };
    const requestIds: Record<string, string> = {};

    const created = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      token: jwt,
      headers: { ...headers, 'x-request-id': 'my-req-1' },
      body: { name: uniqueName(), permission_scope: { mcp_tool_ids: ['*'] } },
    });
    expect(created.status).toBe(201);
    expect(created.headers['x-request-id']).toBe('my-req-1');
    requestIds['api_key.created'] = 'my-req-1';
    const id = created.body.id as string;
    const token = created.body.token as string;

    const steps: [string, Parameters<TestApp['request']>[0]][] = [
      ['api_key.updated', { method: 'PATCH', url: `/api/v1/api-keys/${id}`, body: { name: uniqueName('renamed') } }],
      ['api_key.disabled', { method: 'PATCH', url: `/api/v1/api-keys/${id}`, body: { enabled: false } }],
      ['api_key.enabled', { method: 'PATCH', url: `/api/v1/api-keys/${id}`, body: { enabled: true } }],
      ['api_key.rotated', { method: 'POST', url: `/api/v1/api-keys/${id}/rotate`, body: { grace_period_seconds: 60 } }],
    ];
    let rotatedToken = '';
    let rotatedId = '';
    for (const [action, req] of steps) {
      const res = await t.request({ ...req, token: jwt, headers });
      expect(res.status).toBeLessThan(300);
      expect(typeof res.headers['x-request-id']).toBe('string');
      requestIds[action] = res.headers['x-request-id'] as string;
      if (action === 'api_key.rotated') {
        rotatedToken = res.body.token;
        rotatedId = res.body.id;
      }
    }
    const revoke = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${rotatedId}`, token: jwt, headers });
    expect(revoke.status).toBe(204);
    requestIds['api_key.revoked'] = revoke.headers['x-request-id'] as string;
    // a generated request id is unique per request
    expect(new Set(Object.values(requestIds)).size).toBe(6);

    const rows = await auditRows(tenant);
    expect(rows.map((r) => r.action)).toEqual([
      'api_key.created',
      'api_key.updated',
      'api_key.disabled',
      'api_key.enabled',
      'api_key.rotated',
      'api_key.revoked',
      // revoking the successor also ends the predecessor's grace period, recorded as its own event
      'api_key.revoked',
    ]);
    for (const r of rows) {
      expect(r).toMatchObject({
        tenant_id: tenant,
        actor_type: 'user',
        actor_id: 'alice',
        target_type: 'api_key',
        outcome: 'success',
        request_id: requestIds[r.action],
        user_agent: UA,
      });
      expect(r.ip).toEqual(expect.any(String));
      expect(r.ip.length).toBeGreaterThan(0);
      expect(r.occurred_at).toBeInstanceOf(Date);
    }
    expect(rows.slice(0, 5).map((r) => r.target_id)).toEqual([id, id, id, id, id]);
    expect(rows[5].target_id).toBe(rotatedId);
    expect(rows[6]).toMatchObject({ target_id: id, metadata: { reason: 'successor_revoked', successor_id: rotatedId } });
    expect(rows[4].metadata).toMatchObject({ new_key_id: rotatedId, grace_period_seconds: 60 });

    // no secret and no hash anywhere in the tenant's audit trail
    const hashes = (await t.db.query(`SELECT key_hash FROM api_keys WHERE tenant_id=$1`, [tenant])).map(
      (r: { key_hash: string }) => r.key_hash.trim(),
    );
    expect(hashes).toHaveLength(2);
    // The chain's own hash/prev_hash columns are SHA-256 digests of audit rows, not secrets: leave them out.
    const all = JSON.stringify(rows.map(({ hash: _h, prev_hash: _p, ...rest }: Record<string, unknown>) => rest));
    for (const secret of [token, rotatedToken, ...hashes]) {
      expect(secret.length).toBeGreaterThan(30);
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/[0-9a-f]{64}/);
  });

  it("records a service principal as actor_type 'service'", async () => {
    const tenant = uniqueTenant();
    const service = managementToken({ tenantId: tenant, sub: 'svc-backend', roles: ['service'] });
    const k = await createKey(t, service, { user_id: 'carol' });
    const rows = await auditRows(tenant);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      action: 'api_key.created',
      actor_type: 'service',
      actor_id: 'svc-backend',
      target_type: 'api_key',
      target_id: k.id,
      outcome: 'success',
    });
    expect(rows[0].metadata).toMatchObject({ user_id: 'carol' });
    expect(JSON.stringify(rows)).not.toContain(k.token);
  });

  it('a no-op or idempotent request writes no event', async () => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant });
    const k = await createKey(t, jwt);
    await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: jwt, body: { enabled: true } });
    await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: jwt });
    await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${k.id}`, token: jwt });
    expect((await auditRows(tenant)).map((r) => r.action)).toEqual(['api_key.created', 'api_key.revoked']);
  });

  it.each([
    ['an empty name (DTO validation)', { name: '', permission_scope: { mcp_tool_ids: ['*'] } }],
    ['an unknown scope type (domain parse)', { name: 'x', permission_scope: { spaceship_ids: ['*'] } }],
    ['a past expiry (domain rule)', { name: 'x', permission_scope: { mcp_tool_ids: ['*'] }, expires_at: '2001-01-01T00:00:00Z' }],
  ])('a refused create (422, %s) leaves no key and no audit row', async (_label, body) => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant });
    const res = await t.request({ method: 'POST', url: '/api/v1/api-keys', token: jwt, body });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('validation_failed');
    expect(await auditRows(tenant)).toEqual([]);
    const keys = await t.db.query(`SELECT id FROM api_keys WHERE tenant_id=$1`, [tenant]);
    expect(keys).toEqual([]);
  });

  it('a refused duplicate (409) rolls back with no audit row', async () => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant });
    const name = uniqueName();
    await createKey(t, jwt, { name });
    const dup = await t.request({ method: 'POST', url: '/api/v1/api-keys', token: jwt, body: { name, permission_scope: { mcp_tool_ids: ['*'] } } });
    expect(dup.status).toBe(409);
    expect((await auditRows(tenant)).map((r) => r.action)).toEqual(['api_key.created']);
  });

  it('audit_events is append-only: UPDATE and DELETE are refused by the database', async () => {
    const tenant = uniqueTenant();
    const jwt = managementToken({ tenantId: tenant, sub: 'alice' });
    await createKey(t, jwt);
    const before = await auditRows(tenant);
    expect(before).toHaveLength(1);

    await expect(t.db.query(`UPDATE audit_events SET actor_id = 'mallory' WHERE tenant_id = $1`, [tenant])).rejects.toThrow(
      /append-only/,
    );
    await expect(t.db.query(`DELETE FROM audit_events WHERE tenant_id = $1`, [tenant])).rejects.toThrow(/append-only/);
    await expect(t.db.query(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);

    expect(await auditRows(tenant)).toEqual(before);
  });
});
