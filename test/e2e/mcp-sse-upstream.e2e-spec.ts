import { createServer, IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MAX_UPSTREAM_RESPONSE_BYTES } from '../../src/mcp/infrastructure/sdk-upstream.connector';
import { InFlightRequests } from '../../src/observability/http-instrumentation';
import { createTestApp, TestApp } from '../support/create-test-app';
import { createKey, managementToken, setPlan, uniqueTenant } from '../support/factories';
import { BOOM_MESSAGE, FakeUpstream } from '../support/fake-upstream';

const ERROR_META = 'io.tollgate/error';
const BUDGET_META = 'io.tollgate/budget';
const TIMEOUT_MS = 3_000;

/**
 * Upstreams that answer tools/call with an SSE stream (text/event-stream, as
 * server-everything does), through Tollgate's REST mirror and /mcp: results,
 * notifications and server requests on the stream, broken streams, resumption.
 */
describe('SSE-answering upstreams (e2e, REST mirror and /mcp → Tollgate → upstream answering text/event-stream)', () => {
  let t: TestApp;
  let sse: FakeUpstream;
  let resumable: FakeUpstream;
  let scripted: ScriptedUpstream;
  let baseUrl: string;
  let tenant: string;
  let key: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    sse = await new FakeUpstream({ answer: 'sse' }).start();
    resumable = await new FakeUpstream({ answer: 'sse', resumable: { retryMs: 50 } }).start();
    scripted = await new ScriptedUpstream().start();
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.getHttpServer().address();
    baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    tenant = uniqueTenant('sse');
    const admin = managementToken({ tenantId: tenant });
    await setPlan(t, tenant, 'pro');
    for (const [name, url] of [
      ['sse', sse.url],
      ['resum', resumable.url],
      ['scripted', scripted.url],
    ]) {
      const reg = await t.request({ method: 'POST', url: '/api/v1/mcp/servers', token: admin, body: { name, url, timeout_ms: TIMEOUT_MS } });
      expect(reg.status).toBe(201);
    }
    key = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['*'] } })).token;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    // fetch's keep-alive sockets (some opened after an aborted request) would keep close() waiting.
    t?.app.getHttpServer().closeAllConnections();
    await t?.close();
    await sse?.stop();
    await resumable?.stop();
    await scripted?.stop();
  });

  function restCall(name: string, args: Record<string, unknown> = {}) {
    return t.request({ method: 'POST', url: `/api/v1/mcp/tools/${name}/call`, headers: { 'x-api-key': key }, body: { arguments: args } });
  }

  async function viaMcp(): Promise<Client> {
    const client = new Client({ name: 'e2e-sse', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { 'X-API-Key': key } } }));
    clients.push(client);
    return client;
  }

  /** An SDK client straight to the upstream, declaring no capabilities (as Tollgate's). */
  async function direct(upstream: FakeUpstream): Promise<Client> {
    const client = new Client({ name: 'e2e-direct', version: '1.0.0' }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(new URL(upstream.url)));
    clients.push(client);
    return client;
  }

  const ledger = async () => (await t.db.query(`SELECT type, amount FROM credit_transactions WHERE tenant_id = $1 ORDER BY seq`, [tenant])) as { type: string; amount: string }[];
  const quotaRequests = async () =>
    ((await t.db.query(`SELECT requests FROM quota_counters WHERE tenant_id = $1`, [tenant])) as { requests: string }[]).reduce((n, r) => n + Number(r.requests), 0);

  it('the fake upstream really answers tools/call with text/event-stream', async () => {
    const init = await fetch(sse.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } }),
    });
    expect(init.headers.get('content-type')).toContain('text/event-stream');
    const session = init.headers.get('mcp-session-id');
    await init.text();
    const call = await fetch(sse.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session!, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'probe' } } }),
    });
    expect(call.headers.get('content-type')).toContain('text/event-stream');
    expect(await call.text()).toContain('echo: probe');
  });

  it('a tool result streamed as SSE comes back intact (REST and /mcp), as the upstream gives it to an SDK client', async () => {
    const upstreamResult = await (await direct(sse)).callTool({ name: 'image', arguments: { label: 'dot' } });
    expect(upstreamResult.structuredContent).toEqual({ width: 1, height: 1, format: 'png', label: 'dot' });

    const rest = await restCall('sse__image', { label: 'dot' });
    expect(rest.status).toBe(200);
    expect(withoutBudget(rest.body)).toEqual(upstreamResult);

    const client = await viaMcp();
    const viaTollgate = await client.callTool({ name: 'sse__image', arguments: { label: 'dot' } });
    expect(withoutBudget(viaTollgate)).toEqual(upstreamResult);

    const echoes = await Promise.all(Array.from({ length: 8 }, (_, i) => restCall('sse__echo', { message: `m${i} é ✓` })));
    expect(echoes.map((r) => [r.status, r.body.content])).toEqual(Array.from({ length: 8 }, (_, i) => [200, [{ type: 'text', text: `echo: m${i} é ✓` }]]));
  });

  it("an isError result and a JSON-RPC error on the stream pass through as they do for JSON upstreams", async () => {
    const failed = await restCall('sse__fail');
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({ isError: true, content: [{ type: 'text', text: 'the widget service said no' }] });

    const boom = await restCall('sse__boom', { id: -1 });
    expect(boom.status).toBe(502);
    expect(boom.body.code).toBe('upstream_error');
    expect(JSON.stringify(boom.body)).toContain(BOOM_MESSAGE);
  });

  it('progress and log notifications streamed before the result are skipped, and the result after them is returned', async () => {
    const rest = await restCall('sse__chatty', { count: 25 });
    expect(rest.status).toBe(200);
    expect(rest.body.content).toEqual([{ type: 'text', text: 'said 25 things first' }]);

    const client = await viaMcp();
    const viaTollgate = await client.callTool({ name: 'sse__chatty', arguments: { count: 3 } });
    expect(viaTollgate.isError).toBeFalsy();
    expect(viaTollgate.content).toEqual([{ type: 'text', text: 'said 3 things first' }]);
  });

  describe('M7: progress and _meta of a tools/call', () => {
    const received = (result: unknown) => JSON.parse((result as { content: { text: string }[] }).content[0].text).received_meta;
    /** A raw tools/call on /mcp, as a client after initialize sends it. */
    const mcpCall = (params: Record<string, unknown>, signal?: AbortSignal) =>
      fetch(`${baseUrl}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': key, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params }),
        signal,
      });
    const events = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)));

    it("a caller that asks for progress gets the upstream's progress for its call under its own token, then the result; the rest of its _meta reaches the upstream", async () => {
      const client = await viaMcp();
      const progress: unknown[] = [];
      const result = await client.callTool(
        { name: 'sse__progress', arguments: { steps: 3 }, _meta: { 'example.com/trace': 't-1' } },
        undefined,
        { onprogress: (p) => progress.push(p) },
      );
      // Only the call's own token: the upstream's progress under another token is not relayed.
      expect(progress).toEqual([1, 2, 3].map((i) => ({ progress: i, total: 3, message: `step ${i}` })));
      const meta = received(result);
      expect(meta['example.com/trace']).toBe('t-1');
      // The upstream saw a token of Tollgate's (its shared session), not the caller's.
      expect(meta.progressToken).toEqual(expect.any(Number));
      expect(Object.keys(meta).sort()).toEqual(['example.com/trace', 'progressToken']);
      expect(result._meta?.[BUDGET_META]).toBeDefined();
    });

    it('on the wire: a tools/call with a progressToken is answered as an SSE stream (progress events, then the result); without one, JSON as always', async () => {
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': key, 'mcp-protocol-version': '2025-11-25' };
      const call = (meta?: Record<string, unknown>) =>
        fetch(`${baseUrl}/mcp`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'sse__progress', arguments: { steps: 2 }, ...(meta ? { _meta: meta } : {}) } }),
        });

      const streamed = await call({ progressToken: 'p-7', 'example.com/trace': 't-2' });
      expect(streamed.status).toBe(200);
      expect(streamed.headers.get('content-type')).toContain('text/event-stream');
      expect(streamed.headers.get('x-ratelimit-limit')).not.toBeNull();
      const messages = (await streamed.text())
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)));
      expect(messages.slice(0, 2)).toEqual([1, 2].map((i) => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p-7', progress: i, total: 2, message: `step ${i}` } })));
      expect(messages).toHaveLength(3);
      expect(messages[2]).toMatchObject({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text' }] } });
      expect(received(messages[2].result)['example.com/trace']).toBe('t-2');

      const plain = await call({ 'example.com/trace': 't-3' });
      expect(plain.headers.get('content-type')).toContain('application/json');
      const body = (await plain.json()) as { id: number; result: unknown };
      expect(body.id).toBe(7);
      // No progress asked: the upstream gets the caller's _meta and no progress token at all.
      expect(received(body.result)).toEqual({ 'example.com/trace': 't-3' });

      const bare = (await (await call()).json()) as { result: unknown };
      expect(received(bare.result)).toBeNull();
    });

    it('a call refused before the upstream is one JSON-RPC error on the SSE answer', async () => {
      const res = await mcpCall({ name: 'sse__nope', arguments: {}, _meta: { progressToken: 'p-8' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const messages = events(await res.text());
      expect(messages).toEqual([{ jsonrpc: '2.0', id: 7, error: expect.objectContaining({ code: -32602, data: expect.objectContaining({ code: 'not_found' }) }) }]);
    });

    it("keys the MCP specification reserves (a related task) stay with Tollgate: the call and its progress work as without them", async () => {
      const res = await mcpCall({ name: 'sse__progress', arguments: { steps: 1 }, _meta: { progressToken: 'p-9', 'io.modelcontextprotocol/related-task': { taskId: 'abc' }, 'example.com/k': 1 } });
      const messages = events(await res.text());
      expect(messages[0]).toMatchObject({ method: 'notifications/progress', params: { progressToken: 'p-9', progress: 1 } });
      expect(messages[1].result.isError).toBeFalsy();
      expect(Object.keys(received(messages[1].result)).sort()).toEqual(['example.com/k', 'progressToken']);
    });

    /** Waits until the fake upstream has one more `slow` call than `before` (the call is admitted and at the upstream). */
    const atUpstream = async (before: number) => {
      const reached = Date.now() + TIMEOUT_MS;
      while (sse.callCount('slow') === before && Date.now() < reached) await new Promise((r) => setTimeout(r, 10));
      expect(sse.callCount('slow')).toBe(before + 1);
    };
    /** Waits for `n` more notifications/cancelled at the fake upstream than `before`, and returns the new ones. */
    const rpcAnswer = (r: Response) => r.json() as Promise<{ result: { content: unknown } }>;
    const cancellationsAfter = async (before: number, n = 1) => {
      const by = Date.now() + TIMEOUT_MS;
      while (sse.cancellations.length < before + n && Date.now() < by) await new Promise((r) => setTimeout(r, 10));
      return sse.cancellations.slice(before);
    };

    it.each([
      ['an SSE answer (progress asked for)', { progressToken: 'p-cut' }],
      ['a JSON answer', undefined],
    ])('a client that leaves during %s: the upstream is told to stop the call, which ends at once and is charged (it reached the upstream)', async (_, meta) => {
      const inFlight = t.app.get(InFlightRequests);
      const before = await quotaRequests();
      const cancelled = sse.cancellations.length;
      const aborted = sse.slowAborted;
      const abort = new AbortController();
      const slowCalls = sse.callCount('slow');
      const settled = mcpCall({ name: 'sse__slow', arguments: { ms: 10_000 }, ...(meta ? { _meta: meta } : {}) }, abort.signal)
        .then((r) => r.text())
        .catch(() => 'aborted');
      await atUpstream(slowCalls); // left once the call is at the upstream (admitted, handler waiting for the answer)
      const leftAt = Date.now();
      abort.abort();
      expect(await settled).toBe('aborted');
      // notifications/cancelled for Tollgate's own request id on the upstream session, with the reason.
      const [sent] = await cancellationsAfter(cancelled);
      expect(sent).toEqual({ requestId: expect.any(Number), reason: 'the client closed its connection' });
      const stoppedBy = Date.now() + TIMEOUT_MS;
      while ((inFlight.handlersRunning > 0 || sse.slowAborted === aborted) && Date.now() < stoppedBy) await new Promise((r) => setTimeout(r, 10));
      expect(sse.slowAborted).toBe(aborted + 1); // the upstream's handler stopped sleeping
      expect(inFlight.handlersRunning).toBe(0); // graceful shutdown has nothing to wait for
      expect(Date.now() - leftAt).toBeLessThan(5_000); // not the 10 s the tool would have slept
      // Charged, as a call whose client left always was: the upstream had it, and what it did is unknown.
      expect(await quotaRequests()).toBe(before + 1);
    });

    it("an SDK client that cancels its call (notifications/cancelled, sent on another request) stops it upstream; the client's next call works", async () => {
      const client = await viaMcp();
      const cancelled = sse.cancellations.length;
      const aborted = sse.slowAborted;
      const ledgerBefore = (await ledger()).length;
      const slowCalls = sse.callCount('slow');
      const abort = new AbortController();
      const call = client.callTool({ name: 'sse__slow', arguments: { ms: 10_000 } }, undefined, { signal: abort.signal }).catch((err: Error) => err);
      await atUpstream(slowCalls);
      abort.abort('user pressed stop');
      expect(await call).toBeInstanceOf(Error);
      const [sent] = await cancellationsAfter(cancelled);
      // The caller's reason reaches the upstream, under the upstream request's id (Tollgate's, not the client's).
      expect(sent).toEqual({ requestId: expect.any(Number), reason: 'user pressed stop' });
      const stoppedBy = Date.now() + TIMEOUT_MS;
      while (sse.slowAborted === aborted && Date.now() < stoppedBy) await new Promise((r) => setTimeout(r, 10));
      expect(sse.slowAborted).toBe(aborted + 1);
      // Settled: charged at admission and not refunded since (the upstream had the call). A month's grant may precede it.
      const inFlight = t.app.get(InFlightRequests);
      const settledBy = Date.now() + TIMEOUT_MS;
      while (inFlight.handlersRunning > 0 && Date.now() < settledBy) await new Promise((r) => setTimeout(r, 20));
      expect(inFlight.handlersRunning).toBe(0);
      expect((await ledger()).slice(ledgerBefore).map((r) => r.type).filter((type) => type !== 'grant')).toEqual(['charge']);
      const next = await client.callTool({ name: 'sse__echo', arguments: { message: 'still here' } });
      expect(next.content).toEqual([{ type: 'text', text: 'echo: still here' }]);
    });

    it("a cancellation names a call of its own caller only, and an ambiguous one (two calls in flight under one id) cancels nothing", async () => {
      const admin = managementToken({ tenantId: tenant });
      const otherKey = (await createKey(t, admin, { permission_scope: { mcp_tool_ids: ['*'] } })).token;
      const cancel = (as: string, id: number) =>
        fetch(`${baseUrl}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': as, 'mcp-protocol-version': '2025-11-25' },
          body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'not yours' } }),
        });
      const cancelled = sse.cancellations.length;
      // Another key cancels "its" request 7 while this key's request 7 runs: accepted (202), and the call is not touched.
      let slowCalls = sse.callCount('slow');
      const mine = mcpCall({ name: 'sse__slow', arguments: { ms: 600 } }).then(rpcAnswer);
      await atUpstream(slowCalls);
      expect((await cancel(otherKey, 7)).status).toBe(202);
      expect((await cancel(key, 8)).status).toBe(202); // no call 8 in flight: nothing happens
      expect((await mine).result.content).toEqual([{ type: 'text', text: 'slept 600 ms' }]);
      // Two clients of one key both have a request 7 in flight: a cancellation of 7 cannot tell them apart.
      slowCalls = sse.callCount('slow');
      // (2 s each: the first must still run when the second reaches the upstream, even on a slow host.)
      const first = mcpCall({ name: 'sse__slow', arguments: { ms: 2_000 } }).then(rpcAnswer);
      await atUpstream(slowCalls);
      const second = mcpCall({ name: 'sse__slow', arguments: { ms: 2_000 } }).then(rpcAnswer);
      await atUpstream(slowCalls + 1);
      expect((await cancel(key, 7)).status).toBe(202);
      for (const answer of await Promise.all([first, second])) expect(answer.result.content).toEqual([{ type: 'text', text: 'slept 2000 ms' }]);
      expect(sse.cancellations.length).toBe(cancelled);
      // Unambiguous again: the same cancellation now stops the call, and its HTTP request gets a JSON-RPC error.
      slowCalls = sse.callCount('slow');
      const third = mcpCall({ name: 'sse__slow', arguments: { ms: 10_000 } }).then(rpcAnswer);
      await atUpstream(slowCalls);
      expect((await cancel(key, 7)).status).toBe(202);
      expect(await third).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32800, message: expect.stringContaining('Request cancelled'), data: { code: 'request_cancelled', tool: 'sse__slow' } } });
      expect(await cancellationsAfter(cancelled)).toEqual([{ requestId: expect.any(Number), reason: 'not yours' }]);
    });

    /** Sends one HTTP request on a raw socket and hangs up as soon as it is written. */
    const sendAndHangUp = (path: string, payload: string) =>
      new Promise<void>((resolve, reject) => {
        const socket = connect(Number(new URL(baseUrl).port), '127.0.0.1', () => {
          socket.write(
            `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
              `MCP-Protocol-Version: 2025-11-25\r\nX-API-Key: ${key}\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
            () => {
              socket.destroy();
              resolve();
            },
          );
        });
        socket.once('error', reject);
      });

    it.each([
      ['/mcp', JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'sse__slow', arguments: { ms: 10_000 } } })],
      ['/api/v1/mcp/tools/sse__slow/call', JSON.stringify({ arguments: { ms: 10_000 } })],
    ])('a client that hangs up right after sending its call to %s: no call runs on for nobody, and only a call that reached the upstream is counted', async (path, payload) => {
      const inFlight = t.app.get(InFlightRequests);
      const before = { quota: await quotaRequests(), calls: sse.callCount('slow'), aborted: sse.slowAborted };
      for (let i = 0; i < 5; i++) await sendAndHangUp(path, payload);
      // Each call stops where it is: before admission, before the upstream, or at the upstream (cancelled there),
      // well before the 10 s the tool would sleep.
      const settledBy = Date.now() + 5_000;
      await new Promise((r) => setTimeout(r, 200));
      while (inFlight.handlersRunning > 0 && Date.now() < settledBy) await new Promise((r) => setTimeout(r, 20));
      expect(inFlight.handlersRunning).toBe(0);
      const reached = sse.callCount('slow') - before.calls;
      const stoppedBy = Date.now() + TIMEOUT_MS;
      while (sse.slowAborted - before.aborted < reached && Date.now() < stoppedBy) await new Promise((r) => setTimeout(r, 20));
      expect(sse.slowAborted - before.aborted).toBe(reached); // every call that reached the upstream was stopped there
      expect((await quotaRequests()) - before.quota).toBe(reached); // counted iff it reached the upstream
    });

    it('the REST mirror: a client that leaves cancels the call upstream', async () => {
      const cancelled = sse.cancellations.length;
      const aborted = sse.slowAborted;
      const slowCalls = sse.callCount('slow');
      const abort = new AbortController();
      const settled = fetch(`${baseUrl}/api/v1/mcp/tools/sse__slow/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ arguments: { ms: 10_000 } }),
        signal: abort.signal,
      }).catch(() => 'aborted');
      await atUpstream(slowCalls);
      abort.abort();
      expect(await settled).toBe('aborted');
      expect(await cancellationsAfter(cancelled)).toEqual([{ requestId: expect.any(Number), reason: 'the client closed its connection' }]);
      const stoppedBy = Date.now() + TIMEOUT_MS;
      while (sse.slowAborted === aborted && Date.now() < stoppedBy) await new Promise((r) => setTimeout(r, 10));
      expect(sse.slowAborted).toBe(aborted + 1);
    });

    it('the REST mirror sends no _meta upstream', async () => {
      const rest = await restCall('sse__progress', { steps: 2 });
      expect(rest.status).toBe(200);
      expect(received(rest.body)).toBeNull();
    });
  });

  it('requests the upstream sends on the stream get the answers an SDK client without capabilities gives, and the call completes with its result', async () => {
    const expected = [
      'sampling/createMessage: error -32601 MCP error -32601: Method not found',
      'elicitation/create: error -32601 MCP error -32601: Method not found',
      'roots/list: error -32601 MCP error -32601: Method not found',
      'ping: result {}',
    ].join('\n');
    // What the official SDK client answers, straight to the upstream.
    const upstreamResult = await (await direct(sse)).callTool({ name: 'ask', arguments: {} });
    expect(upstreamResult.content).toEqual([{ type: 'text', text: expected }]);

    const started = Date.now();
    const rest = await restCall('sse__ask');
    expect(rest.status).toBe(200);
    expect(rest.body.content).toEqual([{ type: 'text', text: expected }]);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);

    const client = await viaMcp();
    const viaTollgate = await client.callTool({ name: 'sse__ask', arguments: {} });
    expect(viaTollgate.content).toEqual([{ type: 'text', text: expected }]);
  });

  it('a stream cut mid-answer is upstream_error (REST 502, /mcp isError), refunded and released, and the next call succeeds', async () => {
    expect((await restCall('sse__echo', { message: 'warm' })).status).toBe(200);
    const ledgerBefore = await ledger();
    const quotaBefore = await quotaRequests();

    const started = Date.now();
    const rest = await restCall('sse__cut');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS); // failed by the cut, not by the timeout
    expect(rest.status).toBe(502);
    expect(String(rest.headers['content-type'])).toContain('application/problem+json');
    expect(rest.body.code).toBe('upstream_error');

    const client = await viaMcp();
    const viaTollgate = await client.callTool({ name: 'sse__cut', arguments: {} });
    expect(viaTollgate.isError).toBe(true);
    expect((viaTollgate._meta as Record<string, any>)[ERROR_META]).toMatchObject({ code: 'upstream_error', upstream: 'sse' });

    const after = await ledger();
    expect(after.slice(ledgerBefore.length).map((r) => [r.type, Number(r.amount)])).toEqual([
      ['charge', -1],
      ['refund', 1],
      ['charge', -1],
      ['refund', 1],
    ]);
    expect(await quotaRequests()).toBe(quotaBefore);

    const again = await restCall('sse__echo', { message: 'after the cut' });
    expect(again.status).toBe(200);
    expect(again.body.content).toEqual([{ type: 'text', text: 'echo: after the cut' }]);
  });

  it('an SSE answer over the size cap is upstream_error, well within the timeout', async () => {
    const res = await restCall('sse__huge', { bytes: MAX_UPSTREAM_RESPONSE_BYTES + 1_000 });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    expect(res.body.detail).toContain('larger than');
    expect((await restCall('sse__huge', { bytes: 100_000 })).body.content[0].text).toHaveLength(100_000);
  });

  it('a call past timeout_ms is 504 upstream_timeout, and the upstream is sent notifications/cancelled', async () => {
    const cancelled = sse.methodCount('notifications/cancelled');
    const started = Date.now();
    const res = await restCall('sse__slow', { ms: TIMEOUT_MS + 2_000 });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(res.status).toBe(504);
    expect(res.body.code).toBe('upstream_timeout');
    // The cancellation is sent after the 504, off the response path: poll for it (generously: a slow host).
    const cancelledBy = Date.now() + 10_000;
    while (sse.methodCount('notifications/cancelled') === cancelled && Date.now() < cancelledBy) await new Promise((r) => setTimeout(r, 20));
    expect(sse.methodCount('notifications/cancelled')).toBe(cancelled + 1);
  });

  it('a stream the upstream closes before answering (SSE polling) is resumed with Last-Event-ID and the result arrives', async () => {
    const before = resumable.resumptions.length;
    const rest = await restCall('resum__poll', { ms: 300 });
    expect(rest.status).toBe(200);
    expect(rest.body.content).toEqual([{ type: 'text', text: 'answered 300 ms after closing the stream' }]);
    expect(resumable.resumptions.length).toBeGreaterThan(before);
  });

  it('a resumable stream cut mid-answer is resumed, and the call succeeds', async () => {
    const before = resumable.resumptions.length;
    const rest = await restCall('resum__cut');
    expect(rest.status).toBe(200);
    expect(rest.body.content).toEqual([{ type: 'text', text: 'answered after the cut' }]);
    expect(resumable.resumptions.length).toBeGreaterThan(before);
    expect((await restCall('resum__echo', { message: 'still here' })).body.content).toEqual([{ type: 'text', text: 'echo: still here' }]);
  });

  it('a stream that ends without the response and without event ids fails at once with upstream_error', async () => {
    const started = Date.now();
    const res = await restCall('scripted__ends_early');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    expect(res.body.detail).toContain('without a JSON-RPC response');
    expect(scripted.gets.filter((h) => h['last-event-id'])).toHaveLength(0);
  });

  it('resuming is tried twice (GET with Last-Event-ID and the session), then the call fails with upstream_error', async () => {
    const before = scripted.gets.length;
    const res = await restCall('scripted__unresumable');
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('upstream_error');
    const resumes = scripted.gets.slice(before).filter((h) => h['last-event-id']);
    expect(resumes).toHaveLength(2);
    for (const h of resumes) {
      expect(h).toMatchObject({ 'last-event-id': 'ev-1', 'mcp-session-id': 'scripted-session', accept: 'text/event-stream' });
    }
    expect((await restCall('scripted__ok')).body.content).toEqual([{ type: 'text', text: 'ok' }]);
  });
});

function withoutBudget<T extends { _meta?: unknown }>(result: T): T {
  const meta = { ...((result._meta as Record<string, unknown>) ?? {}) };
  delete meta[BUDGET_META];
  const copy = { ...result } as T & { _meta?: unknown };
  if (Object.keys(meta).length) copy._meta = meta;
  else delete copy._meta;
  return copy;
}

/**
 * An upstream written at the wire level, for stream shapes the SDK server
 * does not produce on demand: `ends_early` (a notification, then the stream
 * ends without a response and without event ids), `unresumable` (a priming
 * event with id `ev-1` and `retry: 10`, then the stream ends; every GET to
 * resume it is refused with 503), and `ok`. Every answer is SSE.
 */
class ScriptedUpstream {
  port = 0;
  /** The headers of every GET, oldest first. */
  readonly gets: IncomingHttpHeaders[] = [];
  private http: HttpServer | null = null;

  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  async start(): Promise<this> {
    const http = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const a = http.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    this.http = http;
    return this;
  }

  async stop(): Promise<void> {
    const http = this.http;
    this.http = null;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') {
      this.gets.push({ ...req.headers });
      res.writeHead(req.headers['last-event-id'] ? 503 : 405).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: number; method?: string; params?: { name?: string } };
    if (msg.id === undefined || !msg.method) {
      res.writeHead(202).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'scripted-session' });
    const send = (message: unknown) => res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    const answer = (result: unknown) => send({ jsonrpc: '2.0', id: msg.id, result });
    const tool = (name: string) => ({ name, inputSchema: { type: 'object' } });
    if (msg.method === 'initialize') {
      answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'scripted', version: '1.0.0' } });
    } else if (msg.method === 'tools/list') {
      answer({ tools: [tool('ends_early'), tool('unresumable'), tool('ok')] });
    } else if (msg.params?.name === 'ends_early') {
      send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'bye' } });
    } else if (msg.params?.name === 'unresumable') {
      res.write('id: ev-1\nretry: 10\ndata: \n\n');
    } else {
      answer({ content: [{ type: 'text', text: 'ok' }] });
    }
    res.end();
  }
}
