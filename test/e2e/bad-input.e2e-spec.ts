import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant } from '../support/factories';

/**
 * Malformed management requests: each is refused with a 4xx problem+json with
 * a stable code (422 validation_failed names the field) and leaves no row
 * behind — neither an api_keys row nor an audit event, and the key a PATCH or
 * rotate aimed at is exactly as before.
 */

type Method = 'GET' | 'POST' | 'PATCH';

interface BadRequest {
  label: string;
  method: Method;
  /** `:id` is replaced with the id of a freshly created key of the test's tenant. */
  path: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  status: number | number[];
  code: string;
  /** For 422: a field path that must appear in `errors`. */
  field?: string;
}

const KEYS = '/api/v1/api-keys';
const VALID_SCOPE = { mcp_tool_ids: ['everything__*'] };
const valid = (extra: Record<string, unknown> = {}) => ({ name: 'bad-input-key', permission_scope: VALID_SCOPE, ...extra });

function deep(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < levels; i++) v = { n: v };
  return v;
}

const CASES: BadRequest[] = [
  // --- POST /api/v1/api-keys: types ---
  { label: 'create: name is a number', method: 'POST', path: KEYS, body: valid({ name: 5 }), status: 422, code: 'validation_failed', field: 'name' },
  { label: 'create: name missing', method: 'POST', path: KEYS, body: { permission_scope: VALID_SCOPE }, status: 422, code: 'validation_failed', field: 'name' },
  { label: 'create: name of 0 characters', method: 'POST', path: KEYS, body: valid({ name: '' }), status: 422, code: 'validation_failed', field: 'name' },
  { label: 'create: name of only spaces', method: 'POST', path: KEYS, body: valid({ name: '    ' }), status: 422, code: 'validation_failed', field: 'name' },
  { label: 'create: name of 300 characters', method: 'POST', path: KEYS, body: valid({ name: 'n'.repeat(300) }), status: 422, code: 'validation_failed', field: 'name' },
  { label: 'create: permission_scope is a string', method: 'POST', path: KEYS, body: valid({ permission_scope: 'x' }), status: 422, code: 'validation_failed', field: 'permission_scope' },
  { label: 'create: permission_scope is an array', method: 'POST', path: KEYS, body: valid({ permission_scope: [] }), status: 422, code: 'validation_failed', field: 'permission_scope' },
  { label: 'create: permission_scope is null', method: 'POST', path: KEYS, body: valid({ permission_scope: null }), status: 422, code: 'validation_failed', field: 'permission_scope' },
  { label: 'create: permission_scope missing', method: 'POST', path: KEYS, body: { name: 'no-scope' }, status: 422, code: 'validation_failed', field: 'permission_scope' },
  // --- scope contents ---
  { label: 'create: unknown scope type tool_ids', method: 'POST', path: KEYS, body: valid({ permission_scope: { tool_ids: ['x'] } }), status: 422, code: 'validation_failed', field: 'permission_scope.tool_ids' },
  { label: 'create: unknown deny key', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: ['*'], deny: { tools: ['x'] } } }), status: 422, code: 'validation_failed', field: 'permission_scope.deny.tools' },
  { label: 'create: deny is an array', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: ['*'], deny: ['x'] } }), status: 422, code: 'validation_failed', field: 'permission_scope.deny' },
  { label: 'create: nested deny inside deny', method: 'POST', path: KEYS, body: valid({ permission_scope: { deny: { deny: {} } } }), status: 422, code: 'validation_failed', field: 'permission_scope.deny.deny' },
  { label: 'create: scope list is a string', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: 'everything__*' } }), status: 422, code: 'validation_failed', field: 'permission_scope.mcp_tool_ids' },
  { label: 'create: non-string scope entry', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: ['ok', 7] } }), status: 422, code: 'validation_failed', field: 'permission_scope.mcp_tool_ids[1]' },
  { label: 'create: null scope entry', method: 'POST', path: KEYS, body: valid({ permission_scope: { agent_ids: [null] } }), status: 422, code: 'validation_failed', field: 'permission_scope.agent_ids[0]' },
  { label: 'create: empty scope entry', method: 'POST', path: KEYS, body: valid({ permission_scope: { flow_ids: [''] } }), status: 422, code: 'validation_failed', field: 'permission_scope.flow_ids[0]' },
  { label: 'create: scope entry of 200 characters', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: ['a'.repeat(200)] } }), status: 422, code: 'validation_failed', field: 'permission_scope.mcp_tool_ids[0]' },
  { label: 'create: scope entry with forbidden characters', method: 'POST', path: KEYS, body: valid({ permission_scope: { mcp_tool_ids: ['a b', '(.*)+$'] } }), status: 422, code: 'validation_failed', field: 'permission_scope.mcp_tool_ids[0]' },
  { label: 'create: 101 scope entries', method: 'POST', path: KEYS, body: valid({ permission_scope: { vector_store_ids: Array.from({ length: 101 }, (_, i) => `vs_${i}`) } }), status: 422, code: 'validation_failed', field: 'permission_scope.vector_store_ids' },
  // --- expiry ---
  { label: 'create: past expires_at', method: 'POST', path: KEYS, body: valid({ expires_at: '2000-01-01T00:00:00Z' }), status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'create: non-ISO expires_at', method: 'POST', path: KEYS, body: valid({ expires_at: 'next tuesday' }), status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'create: impossible date expires_at', method: 'POST', path: KEYS, body: valid({ expires_at: '2099-02-30T00:00:00Z' }), status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'create: numeric expires_at', method: 'POST', path: KEYS, body: valid({ expires_at: 4102444800 }), status: 422, code: 'validation_failed', field: 'expires_at' },
  // --- metadata, user_id, unknown fields ---
  { label: 'create: metadata is an array', method: 'POST', path: KEYS, body: valid({ metadata: ['a'] }), status: 422, code: 'validation_failed', field: 'metadata' },
  { label: 'create: metadata is a string', method: 'POST', path: KEYS, body: valid({ metadata: 'a=b' }), status: 422, code: 'validation_failed', field: 'metadata' },
  { label: 'create: metadata of 10 KB', method: 'POST', path: KEYS, body: valid({ metadata: { blob: 'x'.repeat(10 * 1024) } }), status: 422, code: 'validation_failed', field: 'metadata' },
  { label: 'create: metadata 8 levels deep', method: 'POST', path: KEYS, body: valid({ metadata: deep(8) }), status: 422, code: 'validation_failed', field: 'metadata' },
  { label: 'create: user_id with spaces', method: 'POST', path: KEYS, body: valid({ user_id: 'some user' }), status: 422, code: 'validation_failed', field: 'user_id' },
  { label: 'create: unknown top-level field', method: 'POST', path: KEYS, body: valid({ owner: 'mallory' }), status: 422, code: 'validation_failed', field: 'owner' },
  { label: 'create: client-chosen token', method: 'POST', path: KEYS, body: valid({ token: 'tg_live_chosen' }), status: 422, code: 'validation_failed', field: 'token' },
  // --- body framing ---
  { label: 'create: 2 MB payload', method: 'POST', path: KEYS, body: valid({ metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } }), status: 413, code: 'payload_too_large' },
  { label: 'create: invalid JSON', method: 'POST', path: KEYS, rawBody: '{"name": "x", "permission_scope": {', headers: { 'content-type': 'application/json' }, status: 400, code: 'malformed_request' },
  { label: 'create: empty JSON body', method: 'POST', path: KEYS, rawBody: '', headers: { 'content-type': 'application/json' }, status: [400, 422], code: '*' },
  { label: 'create: body is a JSON array', method: 'POST', path: KEYS, rawBody: '[1,2]', headers: { 'content-type': 'application/json' }, status: [400, 422], code: '*' },
  { label: 'create: __proto__ key', method: 'POST', path: KEYS, rawBody: JSON.stringify(valid()).replace('{', '{"__proto__":{"roles":["admin"]},'), headers: { 'content-type': 'application/json' }, status: [400, 422], code: '*' },
  { label: 'create: JSON sent as text/plain', method: 'POST', path: KEYS, rawBody: JSON.stringify(valid()), headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
  { label: 'create: JSON sent as a form (curl -d default)', method: 'POST', path: KEYS, rawBody: JSON.stringify(valid()), headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { label: 'create: form-encoded fields', method: 'POST', path: KEYS, rawBody: 'name=k&permission_scope=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { label: 'create: XML body', method: 'POST', path: KEYS, rawBody: '<key><name>x</name></key>', headers: { 'content-type': 'application/xml' }, status: 415, code: 'unsupported_media_type' },
  // --- PATCH /api/v1/api-keys/:id ---
  { label: 'patch: name is a number', method: 'PATCH', path: `${KEYS}/:id`, body: { name: 5 }, status: 422, code: 'validation_failed', field: 'name' },
  { label: 'patch: name of 0 characters', method: 'PATCH', path: `${KEYS}/:id`, body: { name: '' }, status: 422, code: 'validation_failed', field: 'name' },
  { label: 'patch: name of 300 characters', method: 'PATCH', path: `${KEYS}/:id`, body: { name: 'n'.repeat(300) }, status: 422, code: 'validation_failed', field: 'name' },
  { label: 'patch: enabled is a string', method: 'PATCH', path: `${KEYS}/:id`, body: { enabled: 'false' }, status: 422, code: 'validation_failed', field: 'enabled' },
  { label: 'patch: past expires_at', method: 'PATCH', path: `${KEYS}/:id`, body: { expires_at: '2001-01-01T00:00:00Z' }, status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'patch: non-ISO expires_at', method: 'PATCH', path: `${KEYS}/:id`, body: { expires_at: '01/02/2099' }, status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'patch: unknown scope type', method: 'PATCH', path: `${KEYS}/:id`, body: { permission_scope: { tool_ids: ['*'] } }, status: 422, code: 'validation_failed', field: 'permission_scope.tool_ids' },
  { label: 'patch: permission_scope null', method: 'PATCH', path: `${KEYS}/:id`, body: { permission_scope: null }, status: 422, code: 'validation_failed', field: 'permission_scope' },
  { label: 'patch: metadata array', method: 'PATCH', path: `${KEYS}/:id`, body: { metadata: [] }, status: 422, code: 'validation_failed', field: 'metadata' },
  { label: 'patch: unknown field status', method: 'PATCH', path: `${KEYS}/:id`, body: { status: 'active' }, status: 422, code: 'validation_failed', field: 'status' },
  { label: 'patch: valid name with a bad enabled', method: 'PATCH', path: `${KEYS}/:id`, body: { name: 'renamed-key', enabled: 'no' }, status: 422, code: 'validation_failed', field: 'enabled' },
  { label: 'patch: valid name with a past expiry', method: 'PATCH', path: `${KEYS}/:id`, body: { name: 'renamed-key', metadata: { a: 1 }, expires_at: '2001-01-01T00:00:00Z' }, status: 422, code: 'validation_failed', field: 'expires_at' },
  { label: 'patch: valid name with a bad scope', method: 'PATCH', path: `${KEYS}/:id`, body: { name: 'renamed-key', permission_scope: { mcp_tool_ids: [42] } }, status: 422, code: 'validation_failed', field: 'permission_scope.mcp_tool_ids[0]' },
  { label: 'patch: invalid JSON', method: 'PATCH', path: `${KEYS}/:id`, rawBody: '{name:', headers: { 'content-type': 'application/json' }, status: 400, code: 'malformed_request' },
  // --- POST /api/v1/api-keys/:id/rotate ---
  { label: 'rotate: grace_period_seconds -1', method: 'POST', path: `${KEYS}/:id/rotate`, body: { grace_period_seconds: -1 }, status: 422, code: 'validation_failed', field: 'grace_period_seconds' },
  { label: 'rotate: grace_period_seconds 1e9', method: 'POST', path: `${KEYS}/:id/rotate`, body: { grace_period_seconds: 1e9 }, status: 422, code: 'validation_failed', field: 'grace_period_seconds' },
  { label: 'rotate: grace_period_seconds "10"', method: 'POST', path: `${KEYS}/:id/rotate`, body: { grace_period_seconds: '10' }, status: 422, code: 'validation_failed', field: 'grace_period_seconds' },
  { label: 'rotate: grace_period_seconds 1.5', method: 'POST', path: `${KEYS}/:id/rotate`, body: { grace_period_seconds: 1.5 }, status: 422, code: 'validation_failed', field: 'grace_period_seconds' },
  { label: 'rotate: unknown field', method: 'POST', path: `${KEYS}/:id/rotate`, body: { grace_period_seconds: 10, new_secret: 'mine' }, status: 422, code: 'validation_failed', field: 'new_secret' },
  // --- POST /api/v1/keys/verify ---
  { label: 'verify: resource.type database', method: 'POST', path: '/api/v1/keys/verify', body: { key: 'tg_live_x', resource: { type: 'database', id: 'db1' } }, status: 422, code: 'validation_failed', field: 'resource.type' },
  { label: 'verify: resource without id', method: 'POST', path: '/api/v1/keys/verify', body: { key: 'tg_live_x', resource: { type: 'mcp_tool' } }, status: 422, code: 'validation_failed', field: 'resource.id' },
  { label: 'verify: resource is a string', method: 'POST', path: '/api/v1/keys/verify', body: { key: 'tg_live_x', resource: 'mcp_tool:x' }, status: 422, code: 'validation_failed', field: 'resource' },
  { label: 'verify: form-encoded key', method: 'POST', path: '/api/v1/keys/verify', rawBody: 'key=tg_live_x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { label: 'verify: key is a number', method: 'POST', path: '/api/v1/keys/verify', body: { key: 12345 }, status: 422, code: 'validation_failed', field: 'key' },
  { label: 'verify: key missing', method: 'POST', path: '/api/v1/keys/verify', body: {}, status: 422, code: 'validation_failed', field: 'key' },
  { label: 'verify: negative cost', method: 'POST', path: '/api/v1/keys/verify', body: { key: 'tg_live_x', cost: -1 }, status: 422, code: 'validation_failed', field: 'cost' },
  { label: 'verify: unknown field', method: 'POST', path: '/api/v1/keys/verify', body: { key: 'tg_live_x', tenant_id: 'other' }, status: 422, code: 'validation_failed', field: 'tenant_id' },
  // --- GET /api/v1/api-keys query strings ---
  { label: 'list: limit=0', method: 'GET', path: `${KEYS}?limit=0`, status: 422, code: 'validation_failed', field: 'limit' },
  { label: 'list: limit=1000', method: 'GET', path: `${KEYS}?limit=1000`, status: 422, code: 'validation_failed', field: 'limit' },
  { label: 'list: limit=abc', method: 'GET', path: `${KEYS}?limit=abc`, status: 422, code: 'validation_failed', field: 'limit' },
  { label: 'list: limit=2.5', method: 'GET', path: `${KEYS}?limit=2.5`, status: 422, code: 'validation_failed', field: 'limit' },
  { label: 'list: bad cursor', method: 'GET', path: `${KEYS}?cursor=not-a-cursor`, status: 422, code: 'validation_failed', field: 'cursor' },
  { label: 'list: cursor of well-formed base64 JSON but wrong shape', method: 'GET', path: `${KEYS}?cursor=${Buffer.from('{"a":1}').toString('base64url')}`, status: 422, code: 'validation_failed', field: 'cursor' },
  { label: 'list: status=weird', method: 'GET', path: `${KEYS}?status=weird`, status: 422, code: 'validation_failed', field: 'status' },
  { label: 'list: unknown query parameter', method: 'GET', path: `${KEYS}?tenant_id=other`, status: 422, code: 'validation_failed', field: 'tenant_id' },
  // --- text that is valid JSON but not Unicode (a lone surrogate escape): jsonb refused it, a 500 ---
  { label: 'create: lone surrogate in metadata', method: 'POST', path: KEYS, rawBody: '{"name":"s1","permission_scope":{"mcp_tool_ids":["*"]},"metadata":{"a":"\\ud800"}}', headers: { 'content-type': 'application/json' }, status: 422, code: 'validation_failed', field: 'metadata.a' },
  { label: 'create: lone surrogate in the name', method: 'POST', path: KEYS, rawBody: '{"name":"s\\udc00","permission_scope":{"mcp_tool_ids":["*"]}}', headers: { 'content-type': 'application/json' }, status: 422, code: 'validation_failed', field: 'name' },
  { label: 'patch: lone surrogate in a metadata member name', method: 'PATCH', path: `${KEYS}/:id`, rawBody: '{"metadata":{"k\\ud83d":1}}', headers: { 'content-type': 'application/json' }, status: 422, code: 'validation_failed', field: 'metadata.k\ud83d' },
  // --- dates @IsISO8601 accepts but JavaScript's Date cannot read: an Invalid Date reached SQL, a 500 ---
  { label: 'audit logs: week date', method: 'GET', path: '/api/v1/audit-logs?from=2026-W01', status: 422, code: 'validation_failed', field: 'from' },
  { label: 'audit logs: basic format', method: 'GET', path: '/api/v1/audit-logs?to=20260101T000000Z', status: 422, code: 'validation_failed', field: 'to' },
  { label: 'audit export: expanded year', method: 'GET', path: '/api/v1/audit-logs/export?from=%2B9999-01-01T00:00:00Z', status: 422, code: 'validation_failed', field: 'from' },
  { label: 'usage: week date', method: 'GET', path: '/api/v1/usage?from=2026-W01', status: 422, code: 'validation_failed', field: 'from' },
  { label: 'create: expires_at as a week date', method: 'POST', path: KEYS, body: valid({ expires_at: '2030-W01' }), status: 422, code: 'validation_failed', field: 'expires_at' },
  // --- a ledger cursor beyond PostgreSQL's bigint: a 500 from the cast ---
  { label: 'credit ledger: cursor beyond bigint', method: 'GET', path: '/api/v1/credits/transactions?cursor=9999999999999999999', status: 422, code: 'validation_failed', field: 'cursor' },
];

describe('Bad input on the management API (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  async function counts(tenant: string): Promise<{ keys: number; audit: number }> {
    const [{ keys }] = await t.db.query(`SELECT count(*)::int AS keys FROM api_keys WHERE tenant_id = $1`, [tenant]);
    const [{ audit }] = await t.db.query(`SELECT count(*)::int AS audit FROM audit_events WHERE tenant_id = $1`, [tenant]);
    return { keys, audit };
  }

  async function row(id: string): Promise<Record<string, unknown>> {
    const rows = await t.db.query(`SELECT * FROM api_keys WHERE id = $1`, [id]);
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  it('has at least 25 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  it.each(CASES.map((c) => [c.label, c] as const))('%s → 4xx problem+json, nothing written', async (_label, c) => {
    const tenant = uniqueTenant('bad');
    const jwt = managementToken({ tenantId: tenant, roles: ['admin'] });
    // A key of this tenant: the target of PATCH / rotate, and a row that must not move.
    const victim = await createKey(t, jwt, { metadata: { team: 'core' } });
    const before = await counts(tenant);
    const victimBefore = await row(victim.id);

    const res = await t.request({
      method: c.method,
      url: c.path.replace(':id', victim.id),
      token: jwt,
      body: c.body,
      rawBody: c.rawBody,
      headers: c.headers,
    });

    const statuses = Array.isArray(c.status) ? c.status : [c.status];
    expect(statuses).toContain(res.status);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(res.body).toEqual(
      expect.objectContaining({
        type: expect.any(String),
        title: expect.any(String),
        status: res.status,
        detail: expect.any(String),
        code: expect.stringMatching(/^[a-z_]+$/),
      }),
    );
    if (c.code !== '*') expect(res.body.code).toBe(c.code);
    if (res.status === 422) {
      expect(res.body.code).toBe('validation_failed');
      expect(Array.isArray(res.body.errors)).toBe(true);
      const fields = (res.body.errors as { field: string; message: string }[]).map((e) => e.field);
      if (c.field) expect(fields).toContain(c.field);
      for (const e of res.body.errors) expect(typeof e.message).toBe('string');
    }
    expect(await counts(tenant)).toEqual(before);
    expect(await row(victim.id)).toEqual(victimBefore);
  });

  it('a refused PATCH leaves the key exactly as before and a valid PATCH still works afterwards', async () => {
    const tenant = uniqueTenant('patch');
    const jwt = managementToken({ tenantId: tenant });
    const victim = await createKey(t, jwt, { name: 'original-name', metadata: { team: 'core' } });
    const before = await row(victim.id);

    const refused = await t.request({
      method: 'PATCH',
      url: `${KEYS}/${victim.id}`,
      token: jwt,
      body: { name: 'renamed', enabled: false, metadata: { team: 'other' }, expires_at: '1999-12-31T23:59:59Z' },
    });
    expect(refused.status).toBe(422);
    expect(await row(victim.id)).toEqual(before);
    const got = await t.request({ method: 'GET', url: `${KEYS}/${victim.id}`, token: jwt });
    expect(got.body).toMatchObject({ name: 'original-name', enabled: true, metadata: { team: 'core' }, expires_at: null });

    // Control: the same key accepts a well-formed change.
    const ok = await t.request({ method: 'PATCH', url: `${KEYS}/${victim.id}`, token: jwt, body: { name: 'renamed' } });
    expect(ok.status).toBe(200);
    expect((await row(victim.id)).name).toBe('renamed');
  });

  it('a key sent to verify with the wrong content type is refused (415) and never echoed back', async () => {
    const tenant = uniqueTenant('echo');
    const jwt = managementToken({ tenantId: tenant });
    const { token } = await createKey(t, jwt);
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/keys/verify',
        token: jwt,
        rawBody: JSON.stringify({ key: token }),
        headers: { 'content-type': type },
      });
      expect(res.status).toBe(415);
      expect(res.body.code).toBe('unsupported_media_type');
      expect(res.text).not.toContain(token);
      expect(res.text).not.toContain(token.slice(8));
    }
    // Control: the same body as JSON verifies.
    const ok = await t.request({ method: 'POST', url: '/api/v1/keys/verify', token: jwt, body: { key: token } });
    expect(ok.status).toBe(200);
    expect(ok.body.valid).toBe(true);
  });

  it('a well-formed create in the same shape as the cases succeeds (the cases fail for their fault only)', async () => {
    const tenant = uniqueTenant('ctl');
    const jwt = managementToken({ tenantId: tenant });
    const res = await t.request({
      method: 'POST',
      url: KEYS,
      token: jwt,
      body: valid({
        name: 'n'.repeat(100),
        expires_at: '2099-01-01T00:00:00Z',
        metadata: deep(5),
        permission_scope: { mcp_tool_ids: Array.from({ length: 100 }, (_, i) => `t${i}_${'a'.repeat(120)}`), deny: { mcp_tool_ids: ['x'] } },
      }),
    });
    expect(res.status).toBe(201);
    expect(await counts(tenant)).toEqual({ keys: 1, audit: 1 });
  });
});
