import { createHash, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Clock } from '../../src/shared/domain/clock';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, uniqueTenant, verifyKey } from '../support/factories';

/**
 * K9: POST /api/v1/keys/leaks in the GitHub secret-scanning partner format.
 * A local server plays GitHub's public-key endpoint (LEAK_REPORT_KEYS_URL);
 * reports are signed with the matching P-256 private key, as GitHub signs
 * them (ECDSA SHA-256 of the raw body, base64, DER).
 */
describe('POST /api/v1/keys/leaks (e2e)', () => {
  let t: TestApp;
  let keysServer: Server;
  let fetches = 0;
  let notModified = 0;
  let keysDown = false;
  /** Moves Tollgate's clock forward (the key set's cache and refetch limits are minutes long). */
  let shiftMs = 0;
  const clock = { now: () => new Date(Date.now() + shiftMs) };
  const signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const published = [{ key_identifier: 'kid-1', key: signer.publicKey.export({ type: 'spki', format: 'pem' }).toString(), is_current: true }];

  beforeAll(async () => {
    keysServer = createServer((req, res) => {
      fetches++;
      if (keysDown) {
        res.writeHead(503).end();
        return;
      }
      const body = JSON.stringify({ public_keys: published });
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        notModified++;
        res.writeHead(304, { etag }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', etag });
      res.end(body);
    });
    await new Promise<void>((r) => keysServer.listen(0, '127.0.0.1', r));
    t = await createTestApp({ LEAK_REPORT_KEYS_URL: `http://127.0.0.1:${(keysServer.address() as AddressInfo).port}/meta/public_keys/secret_scanning` }, [
      { provide: Clock, useValue: clock },
    ]);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await new Promise((r) => keysServer.close(r));
  });

  function report(entries: unknown, opts: { kid?: string | null; key?: KeyObject; raw?: string; tamper?: boolean } = {}) {
    const raw = opts.raw ?? JSON.stringify(entries);
    const signature = sign('sha256', Buffer.from(raw), opts.key ?? signer.privateKey).toString('base64');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (opts.kid !== null) headers['github-public-key-identifier'] = opts.kid ?? 'kid-1';
    headers['github-public-key-signature'] = signature;
    return t.request({ method: 'POST', url: '/api/v1/keys/leaks', rawBody: opts.tamper ? raw.replace('leak', 'LEAK') : raw, headers });
  }

  const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

  async function tenant() {
    const id = uniqueTenant('leak');
    return { id, admin: managementToken({ tenantId: id, sub: 'admin-1', roles: ['admin'] }), service: managementToken({ tenantId: id, sub: 'svc', roles: ['service'] }) };
  }

  it('a reported key is disabled at once (agent routes and verify refuse it), audited, alerted; others are false positives; the secret is never echoed', async () => {
    const a = await tenant();
    const put = await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: a.admin, body: { url: 'http://127.0.0.1:9/alerts' } });
    expect(put.status).toBe(200);
    const k = await createKey(t, a.admin);
    // Warm the key cache: the report must evict it.
    expect((await verifyKey(t, a.service, { key: k.token })).body.valid).toBe(true);
    const notOurs = 'ghp_0123456789abcdefghijklmnopqrstuvwxyz';
    const res = await report([
      { token: k.token, type: 'tollgate_api_key', url: 'https://github.com/octo/leak/blob/main/.env', source: 'content' },
      { token: notOurs, type: 'tollgate_api_key', url: 'https://github.com/octo/leak/blob/main/x', source: 'content' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { token_hash: sha256(k.token), token_type: 'tollgate_api_key', label: 'true_positive' },
      { token_hash: sha256(notOurs), token_type: 'tollgate_api_key', label: 'false_positive' },
    ]);
    expect(res.text).not.toContain(k.token);

    expect((await verifyKey(t, a.service, { key: k.token })).body).toMatchObject({ valid: false, code: 'disabled_key' });
    const agent = await t.request({ method: 'GET', url: '/api/v1/mcp/tools', headers: { 'x-api-key': k.token } });
    expect(agent.status).toBe(401);
    expect(agent.body.code).toBe('disabled_key');
    const got = await t.request({ method: 'GET', url: `/api/v1/api-keys/${k.id}`, token: a.admin });
    expect(got.body).toMatchObject({ enabled: false, status: 'disabled' });

    const audit = await t.db.query(`SELECT actor_type, actor_id, action, target_id, metadata FROM audit_events WHERE tenant_id = $1 AND action = 'api_key.leaked'`, [a.id]);
    expect(audit).toEqual([
      {
        actor_type: 'system',
        actor_id: 'leak-report',
        action: 'api_key.leaked',
        target_id: k.id,
        metadata: { disabled: true, status_before: 'active', reported_type: 'tollgate_api_key', url: 'https://github.com/octo/leak/blob/main/.env', source: 'content' },
      },
    ]);
    expect(JSON.stringify(audit)).not.toContain(k.token);
    const alerts = await t.db.query(`SELECT type, payload FROM alert_deliveries WHERE tenant_id = $1`, [a.id]);
    expect(alerts).toEqual([{ type: 'key.leaked', payload: { key_id: k.id, name: k.name, disabled: true, url: 'https://github.com/octo/leak/blob/main/.env', source: 'content' } }]);
  });

  it('reported again, or reported once revoked: still a true positive, nothing re-enabled; one alert per leak of a usable key', async () => {
    const a = await tenant();
    await t.request({ method: 'PUT', url: '/api/v1/alerts/settings', token: a.admin, body: { url: 'http://127.0.0.1:9/alerts' } });
    const k = await createKey(t, a.admin);
    const revoked = await createKey(t, a.admin);
    expect((await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${revoked.id}`, token: a.admin })).status).toBe(204);
    for (let i = 0; i < 2; i++) {
      const res = await report([{ token: k.token, type: 'tollgate_api_key' }, { token: revoked.token, type: 'tollgate_api_key' }]);
      expect(res.body.map((r: { label: string }) => r.label)).toEqual(['true_positive', 'true_positive']);
    }
    const audit = await t.db.query(`SELECT target_id, metadata->>'disabled' AS disabled, metadata->>'status_before' AS before FROM audit_events WHERE tenant_id = $1 AND action = 'api_key.leaked' ORDER BY seq`, [a.id]);
    expect(audit).toEqual([
      { target_id: k.id, disabled: 'true', before: 'active' },
      { target_id: revoked.id, disabled: 'false', before: 'revoked' },
      { target_id: k.id, disabled: 'false', before: 'disabled' },
      { target_id: revoked.id, disabled: 'false', before: 'revoked' },
    ]);
    const alertsFor = async () => (await t.db.query(`SELECT payload->>'key_id' AS key_id FROM alert_deliveries WHERE tenant_id = $1 AND type = 'key.leaked'`, [a.id])).map((r: { key_id: string }) => r.key_id);
    // The same leak twice: one alert; a revoked key cannot be used: none.
    expect(await alertsFor()).toEqual([k.id]);
    // Re-enabled by its owner and leaked again: disabled again, alerted again.
    expect((await t.request({ method: 'PATCH', url: `/api/v1/api-keys/${k.id}`, token: a.admin, body: { enabled: true } })).status).toBe(200);
    expect((await report([{ token: k.token, type: 'tollgate_api_key', url: 'https://github.com/octo/other' }])).body[0].label).toBe('true_positive');
    expect((await verifyKey(t, a.service, { key: k.token })).body).toMatchObject({ valid: false, code: 'disabled_key' });
    expect(await alertsFor()).toEqual([k.id, k.id]);
  });

  it('a tenant without alert settings gets no alert row (the key is still disabled and audited)', async () => {
    const a = await tenant();
    const k = await createKey(t, a.admin);
    expect((await report([{ token: k.token, type: 'tollgate_api_key' }])).body[0].label).toBe('true_positive');
    expect((await verifyKey(t, a.service, { key: k.token })).body.code).toBe('disabled_key');
    expect(await t.db.query(`SELECT 1 FROM alert_deliveries WHERE tenant_id = $1`, [a.id])).toEqual([]);
    expect(await t.db.query(`SELECT 1 FROM audit_events WHERE tenant_id = $1 AND action = 'api_key.leaked'`, [a.id])).toHaveLength(1);
  });

  it('a key published later: deferred (503 + Retry-After) within a minute of the last fetch, then fetched; made-up identifiers cost one conditional fetch a minute', async () => {
    const rotated = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    published.push({ key_identifier: 'kid-2', key: rotated.publicKey.export({ type: 'spki', format: 'pem' }).toString(), is_current: true });
    const entries = [{ token: 'tg_not_a_key', type: 'tollgate_api_key' }];
    const before = fetches;
    const deferred = await report(entries, { kid: 'kid-2', key: rotated.privateKey });
    expect(deferred.status).toBe(503);
    expect(deferred.body.code).toBe('service_unavailable');
    expect(Number(deferred.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(deferred.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(fetches).toBe(before);

    shiftMs += 61_000;
    const res = await report(entries, { kid: 'kid-2', key: rotated.privateKey });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([{ token_hash: sha256('tg_not_a_key'), token_type: 'tollgate_api_key', label: 'false_positive' }]);
    expect(fetches).toBe(before + 1);

    // Made up: within the minute, deferred without a fetch; after it, one fetch, then refused.
    expect((await report(entries, { kid: 'kid-made-up' })).status).toBe(503);
    expect(fetches).toBe(before + 1);
    shiftMs += 61_000;
    const notModifiedBefore = notModified;
    const refused = await report(entries, { kid: 'kid-made-up' });
    expect(refused.status).toBe(401);
    expect(fetches).toBe(before + 2);
    expect(notModified).toBe(notModifiedBefore + 1); // revalidated with If-None-Match: nothing changed
  });

  it('keeps the last good keys when the key endpoint fails after the cache expired', async () => {
    const a = await tenant();
    const k = await createKey(t, a.admin);
    keysDown = true;
    try {
      shiftMs += 61 * 60_000;
      const before = fetches;
      const res = await report([{ token: k.token, type: 'tollgate_api_key' }]);
      expect(res.status).toBe(200);
      expect(res.body[0].label).toBe('true_positive');
      expect(fetches).toBe(before + 1); // it tried
      // And does not hammer the failing endpoint: the next report within the minute uses the kept keys.
      expect((await report([{ token: 'x', type: 't' }])).status).toBe(200);
      expect(fetches).toBe(before + 1);
    } finally {
      keysDown = false;
    }
  });

  it('refuses unsigned, wrongly signed, tampered and unknown-key reports with 401 and changes nothing', async () => {
    const a = await tenant();
    const k = await createKey(t, a.admin);
    const entries = [{ token: k.token, type: 'tollgate_api_key', url: 'https://github.com/octo/leak' }];
    for (const res of [
      await report(entries, { kid: null }),
      await report(entries, { key: stranger.privateKey }),
      await report(entries, { tamper: true }),
      await report(entries, { kid: 'not an identifier!' }),
      await t.request({ method: 'POST', url: '/api/v1/keys/leaks', body: entries }),
      await t.request({ method: 'POST', url: '/api/v1/keys/leaks', body: entries, headers: { 'github-public-key-identifier': 'kid-1', 'github-public-key-signature': 'not base64 at all' } }),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(res.body.code).toBe('unauthenticated');
      expect(res.text).not.toContain(k.token);
    }
    expect((await verifyKey(t, a.service, { key: k.token })).body).toMatchObject({ valid: true });
  });

  it('a signed body that is not a report is 422 (or 400 for broken JSON), listing every bad entry without the tokens', async () => {
    const notArray = await report({ token: 'x' });
    expect(notArray.status).toBe(422);
    expect(notArray.body.code).toBe('validation_failed');
    const bad = await report([{ token: '' }, { type: 'x' }, 'str', { token: 'ok', url: 42 }]);
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toEqual(['[0].token', '[1].token', '[2]', '[3].url']);
    const broken = await report(null, { raw: '[{"token": "leak' });
    expect(broken.status).toBe(400);
    expect(broken.body.code).toBe('malformed_request');
  });
});

describe('POST /api/v1/keys/leaks without LEAK_REPORT_KEYS_URL (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ LEAK_REPORT_KEYS_URL: undefined });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it('is 404 not_found: the endpoint is off', async () => {
    const res = await t.request({ method: 'POST', url: '/api/v1/keys/leaks', body: [{ token: 'x' }], headers: { 'github-public-key-identifier': 'kid-1', 'github-public-key-signature': 'AAAA' } });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });
});

describe('POST /api/v1/keys/leaks when the public keys cannot be fetched (e2e)', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A port nothing listens on: the fetch fails at once.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    t = await createTestApp({ LEAK_REPORT_KEYS_URL: `http://127.0.0.1:${port}/keys` });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it('is 503 service_unavailable (the reporter retries), not a 401 or a 500', async () => {
    const res = await t.request({ method: 'POST', url: '/api/v1/keys/leaks', body: [{ token: 'x' }], headers: { 'github-public-key-identifier': 'kid-1', 'github-public-key-signature': 'AAAA' } });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('service_unavailable');
    expect(res.headers['retry-after']).toBe('60');
  });
});
