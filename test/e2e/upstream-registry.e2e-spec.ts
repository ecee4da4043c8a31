import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Upstream, UpstreamTool } from '../../src/mcp/domain/upstream';
import { UpstreamConnector } from '../../src/mcp/domain/upstream.repository';
import { HeaderCipher } from '../../src/mcp/infrastructure/header-cipher';
import { createTestApp, TestApp } from '../support/create-test-app';
import { managementToken, uniqueTenant } from '../support/factories';
import { FakeUpstream } from '../support/fake-upstream';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nothing listens there: connecting is refused at once. */
const DEAD_URL = 'http://127.0.0.1:1/mcp';

/**
 * M2 upstream registry under concurrency and bad input: a refresh or PATCH
 * never overwrites what a concurrent change committed (D5), header values Node
 * cannot send are refused up front and no header value reaches an error body
 * (D6), a taken name is 409 before the upstream is contacted (D7).
 */
describe('upstream registry (e2e): races, header values, duplicate names', () => {
  let t: TestApp;
  let fake: FakeUpstream;
  let other: FakeUpstream;
  let connector: UpstreamConnector;
  let originalListTools: UpstreamConnector['listTools'];

  beforeAll(async () => {
    fake = await new FakeUpstream().start();
    other = await new FakeUpstream().start();
    t = await createTestApp();
    connector = t.app.get(UpstreamConnector);
    originalListTools = connector.listTools;
  }, 60_000);

  afterEach(() => {
    connector.listTools = originalListTools;
    fake.mode = 'normal';
  });

  afterAll(async () => {
    await t?.close();
    await fake?.stop();
    await other?.stop();
  });

  function admin(): { token: string; tenant: string } {
    const tenant = uniqueTenant('reg');
    return { tenant, token: managementToken({ tenantId: tenant }) };
  }

  async function register(token: string, body: Record<string, unknown>): Promise<string> {
    const res = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  /** The next tools/list calls (of any upstream) take `ms` longer, once they have their answer. */
  function slowListing(ms: number, when: (u: Upstream) => boolean = () => true): void {
    connector.listTools = async (u: Upstream): Promise<UpstreamTool[]> => {
      const tools = await originalListTools.call(connector, u);
      if (when(u)) await sleep(ms);
      return tools;
    };
  }

  async function auditActions(tenant: string, id: string): Promise<string[]> {
    const rows = await t.db.query(`SELECT action FROM audit_events WHERE tenant_id = $1 AND target_id = $2 ORDER BY seq`, [tenant, id]);
    return rows.map((r: { action: string }) => r.action);
  }

  async function row(id: string): Promise<{ name: string; url: string; timeout_ms: number; header_names: string[]; headers: Record<string, string> } | undefined> {
    const rows = await t.db.query(`SELECT name, url, timeout_ms, header_names, headers_encrypted FROM mcp_servers WHERE id = $1`, [id]);
    if (!rows[0]) return undefined;
    const { headers_encrypted, ...rest } = rows[0];
    return { ...rest, headers: t.app.get(HeaderCipher).decrypt(headers_encrypted) };
  }

  describe('D5: refresh and PATCH write only what they change, on the row as it is when they commit', () => {
    it('a PATCH committed while a refresh lists tools is kept (the refresh writes only the tools)', async () => {
      const { token } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      slowListing(600);
      const refresh = t.request({ method: 'POST', url: `/api/v1/mcp/servers/${id}/refresh`, token });
      await sleep(100);
      const patch = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { name: 'beta', timeout_ms: 1234 } });
      expect(patch.status).toBe(200);
      const refreshed = await refresh;
      expect(refreshed.status).toBe(200);
      expect(refreshed.body).toMatchObject({ name: 'beta', timeout_ms: 1234 });
      expect(refreshed.body.tools.map((x: { name: string }) => x.name)).toContain('beta__echo');

      const got = await t.request({ method: 'GET', url: `/api/v1/mcp/servers/${id}`, token });
      expect(got.body).toMatchObject({ name: 'beta', timeout_ms: 1234 });
      expect(await row(id)).toMatchObject({ name: 'beta', timeout_ms: 1234 });
    });

    it('a refresh of a server deleted while it listed tools is 404 not_found, and audits nothing after the deletion', async () => {
      const { token, tenant } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      slowListing(600);
      const refresh = t.request({ method: 'POST', url: `/api/v1/mcp/servers/${id}/refresh`, token });
      await sleep(100);
      const del = await t.request({ method: 'DELETE', url: `/api/v1/mcp/servers/${id}`, token });
      expect(del.status).toBe(204);
      const refreshed = await refresh;
      expect(refreshed.status).toBe(404);
      expect(refreshed.body.code).toBe('not_found');
      expect(await auditActions(tenant, id)).toEqual(['mcp_server.registered', 'mcp_server.deleted']);
      expect(await row(id)).toBeUndefined();
    });

    it('a PATCH of the url of a server deleted while it validated the url is 404 not_found, and audits nothing', async () => {
      const { token, tenant } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      slowListing(600);
      const patch = t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: other.url } });
      await sleep(100);
      expect((await t.request({ method: 'DELETE', url: `/api/v1/mcp/servers/${id}`, token })).status).toBe(204);
      const res = await patch;
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('not_found');
      expect(await auditActions(tenant, id)).toEqual(['mcp_server.registered', 'mcp_server.deleted']);
      expect(await row(id)).toBeUndefined();
    });

    it('a PATCH of the url keeps a name and timeout changed by a PATCH committed meanwhile', async () => {
      const { token } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      slowListing(600, (u) => u.url === other.url);
      const slow = t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: other.url } });
      await sleep(100);
      const quick = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { name: 'beta', timeout_ms: 1234 } });
      expect(quick.status).toBe(200);
      const res = await slow;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'beta', timeout_ms: 1234, url: other.url });
      expect(await row(id)).toMatchObject({ name: 'beta', timeout_ms: 1234, url: other.url });
    });

    it('a PATCH whose url was validated with headers another PATCH replaced meanwhile is 409 invalid_state, and changes nothing', async () => {
      const { token, tenant } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url, headers: { 'X-Token': 'first-token' } });
      // Same origin (a url alone may move there with the stored headers; another origin needs them sent again).
      const sameOrigin = `${fake.url}?alt=1`;
      slowListing(600, (u) => u.url === sameOrigin);
      const slow = t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: sameOrigin } });
      await sleep(100);
      const quick = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { headers: { 'X-Token': 'second-token' } } });
      expect(quick.status).toBe(200);
      const res = await slow;
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('invalid_state');
      expect(res.text).not.toContain('second-token');
      expect(await row(id)).toMatchObject({ url: fake.url, headers: { 'X-Token': 'second-token' } });
      expect(await auditActions(tenant, id)).toEqual(['mcp_server.registered', 'mcp_server.updated']);
    });

    it('a refresh that listed the tools of a url a PATCH replaced meanwhile is 409 invalid_state and leaves the PATCH as it was', async () => {
      const { token, tenant } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      slowListing(600, (u) => u.url === fake.url);
      const refresh = t.request({ method: 'POST', url: `/api/v1/mcp/servers/${id}/refresh`, token });
      await sleep(100);
      const patch = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: other.url } });
      expect(patch.status).toBe(200);
      const res = await refresh;
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('invalid_state');
      expect(await row(id)).toMatchObject({ url: other.url });
      expect(await auditActions(tenant, id)).toEqual(['mcp_server.registered', 'mcp_server.updated']);
    });
  });

  describe('D6: header values are RFC 9110 field values Node can send; no header value reaches an error body', () => {
    const BAD: [string, string][] = [
      ['a non-Latin-1 character', 'Bearer s3cr\u20acT-value'],
      ['NUL', 'Bearer s3cr\u0000T-value'],
      ['a control character', 'Bearer s3cr\u0001T-value'],
      ['DEL', 'Bearer s3cr\u007fT-value'],
      ['a leading space', ' Bearer s3crT-value'],
      ['a trailing tab', 'Bearer s3crT-value\t'],
    ];

    it.each(BAD)('POST with a header value containing %s is 422 validation_failed naming the header, not its value', async (_what, value) => {
      const { token, tenant } = admin();
      const before = fake.methodCount('initialize');
      const res = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body: { name: 'alpha', url: fake.url, headers: { Authorization: value } } });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'headers.Authorization' })]);
      expect(res.text).not.toContain('s3cr');
      expect(fake.methodCount('initialize')).toBe(before);
      const rows = await t.db.query(`SELECT count(*)::int AS n FROM mcp_servers WHERE tenant_id = $1`, [tenant]);
      expect(rows[0].n).toBe(0);
    });

    it.each(BAD)('PATCH with a header value containing %s is 422 validation_failed and changes nothing', async (_what, value) => {
      const { token } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url, headers: { Authorization: 'Bearer good' } });
      const res = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { headers: { Authorization: value } } });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'headers.Authorization' })]);
      expect(res.text).not.toContain('s3cr');
      expect(await row(id)).toMatchObject({ headers: { Authorization: 'Bearer good' } });
    });

    it('values with inner spaces and tabs and obs-text (U+0080–U+00FF, sent as one byte each) are accepted and sent', async () => {
      const { token } = admin();
      const value = 'Basic d\u00e9j\u00e0\tvu  x';
      const seen = fake.requestHeaders.length;
      await register(token, { name: 'alpha', url: fake.url, headers: { 'X-Custom': value } });
      const sent = fake.requestHeaders.slice(seen).map((h) => h['x-custom']);
      expect(sent.length).toBeGreaterThan(0);
      // node:http reads header bytes as Latin-1: the same characters come back.
      expect(sent.every((v) => v === value)).toBe(true);
    });

    describe('an upstream that echoes its credentials in an error', () => {
      let echo: Server;
      let echoUrl: string;

      beforeAll(async () => {
        echo = createServer((req: IncomingMessage, res: ServerResponse) => {
          req.resume();
          res.writeHead(401, { 'content-type': 'text/plain' });
          res.end(`invalid credentials: ${req.headers.authorization ?? ''} / ${req.headers['x-api-secret'] ?? ''}`);
        });
        await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
        const a = echo.address();
        echoUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/mcp`;
      });

      afterAll(async () => {
        await new Promise<void>((resolve) => echo.close(() => resolve()));
      });

      it('502 upstream_error whose body holds none of the header values', async () => {
        const { token } = admin();
        const res = await t.request({
          method: 'POST',
          url: '/api/v1/mcp/servers',
          token,
          body: { name: 'alpha', url: echoUrl, headers: { Authorization: 'Bearer tok-9f8e7d6c5b4a', 'X-Api-Secret': 'sk-0123456789abcdef' } },
        });
        expect(res.status).toBe(502);
        expect(res.body.code).toBe('upstream_error');
        expect(res.text).not.toContain('tok-9f8e7d6c5b4a');
        expect(res.text).not.toContain('sk-0123456789abcdef');
        expect(res.text).not.toContain('0123456789');
      });
    });

    it('a stored header value the HTTP client refuses (a row written before this check) fails with a 502 whose body does not echo it', async () => {
      const { token } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url, headers: { Authorization: 'Bearer good' } });
      const sealed = t.app.get(HeaderCipher).encrypt({ Authorization: 'Bearer leak\u0000me-42' });
      await t.db.query(`UPDATE mcp_servers SET headers_encrypted = $1 WHERE id = $2`, [sealed, id]);
      const res = await t.request({ method: 'POST', url: `/api/v1/mcp/servers/${id}/refresh`, token });
      expect(res.status).toBe(502);
      expect(res.body.code).toBe('upstream_error');
      expect(res.text).not.toContain('leak');
      expect(res.text).not.toContain('me-42');
    });
  });

  describe('stored headers never follow a server to another origin', () => {
    it('a PATCH moving the url to another origin without headers is 422 and changes nothing; with headers (or {}) it goes through', async () => {
      const { token } = admin();
      const id = await register(token, { name: 'gh', url: fake.url, headers: { Authorization: 'Bearer upstream-secret-123' } });
      const seen: (string | undefined)[] = [];
      const original = connector.listTools;
      connector.listTools = async (u: Upstream) => {
        seen.push(u.headers.Authorization);
        return original.call(connector, u);
      };
      const moved = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: other.url } });
      expect(moved.status).toBe(422);
      expect(moved.body.code).toBe('validation_failed');
      expect(moved.body.errors.map((e: { field: string }) => e.field)).toEqual(['headers']);
      expect(moved.text).not.toContain('upstream-secret-123');
      expect(seen).toEqual([]);
      expect((await t.request({ method: 'GET', url: `/api/v1/mcp/servers/${id}`, token })).body.url).toBe(fake.url);
      const withNone = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: other.url, headers: {} } });
      expect(withNone.status).toBe(200);
      expect(seen).toEqual([undefined]);
      // Back to the first origin with no headers stored: nothing to carry, a url alone is fine.
      expect((await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { url: fake.url } })).status).toBe(200);
    });
  });

  describe('D7: a name taken in the tenant is 409 duplicate_name before the upstream is contacted', () => {
    it('POST with a taken name and an unreachable url is 409 duplicate_name', async () => {
      const { token, tenant } = admin();
      await register(token, { name: 'alpha', url: fake.url });
      const res = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body: { name: 'alpha', url: DEAD_URL } });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('duplicate_name');
      const rows = await t.db.query(`SELECT url FROM mcp_servers WHERE tenant_id = $1`, [tenant]);
      expect(rows).toEqual([{ url: fake.url }]);
    });

    it('POST with a taken name and an upstream that hangs is 409 at once, without contacting it', async () => {
      const { token } = admin();
      await register(token, { name: 'alpha', url: other.url });
      fake.mode = 'hang';
      const before = fake.requestHeaders.length;
      const started = Date.now();
      const res = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body: { name: 'alpha', url: fake.url, timeout_ms: 5000 } });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('duplicate_name');
      expect(Date.now() - started).toBeLessThan(2000);
      expect(fake.requestHeaders.length).toBe(before);
    });

    it('two registrations of one name racing past the check: one 201, the other 409 duplicate_name (the unique index is the backstop)', async () => {
      const { token, tenant } = admin();
      slowListing(600);
      const [a, b] = await Promise.all([
        t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body: { name: 'alpha', url: fake.url } }),
        t.request({ method: 'POST', url: '/api/v1/mcp/servers', token, body: { name: 'alpha', url: other.url } }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      expect((a.status === 409 ? a : b).body.code).toBe('duplicate_name');
      const rows = await t.db.query(`SELECT count(*)::int AS n FROM mcp_servers WHERE tenant_id = $1`, [tenant]);
      expect(rows[0].n).toBe(1);
    });

    it('the same name in another tenant is not taken', async () => {
      const a = admin();
      const b = admin();
      await register(a.token, { name: 'alpha', url: fake.url });
      await register(b.token, { name: 'alpha', url: fake.url });
    });

    it('PATCH to a taken name with an unreachable url is 409 duplicate_name, and changes nothing', async () => {
      const { token } = admin();
      await register(token, { name: 'alpha', url: fake.url });
      const id = await register(token, { name: 'beta', url: fake.url });
      const res = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { name: 'alpha', url: DEAD_URL } });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('duplicate_name');
      expect(await row(id)).toMatchObject({ name: 'beta', url: fake.url });
    });

    it('PATCH keeping its own name with a new url is not a duplicate', async () => {
      const { token } = admin();
      const id = await register(token, { name: 'alpha', url: fake.url });
      const res = await t.request({ method: 'PATCH', url: `/api/v1/mcp/servers/${id}`, token, body: { name: 'alpha', url: other.url } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'alpha', url: other.url });
    });
  });
});
