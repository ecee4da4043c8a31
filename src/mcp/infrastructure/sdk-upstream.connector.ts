import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { ClientRequest, Agent as HttpAgent, request as httpRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { CallToolResultSchema, ErrorCode, McpError, ProgressNotificationSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { redactHeaderValues, type Upstream, type UpstreamTool } from '../domain/upstream';
import { ToolCallCancelledError, UpstreamFailureError, UpstreamProtocolError, UpstreamSessionClosedError, UpstreamTimeoutError } from '../domain/mcp.errors';
import { ToolCallOptions, ToolProgress, UpstreamConnector } from '../domain/upstream.repository';
import type { CallCancellation } from '../domain/call-cancellation';
import { SseMessageReader } from './sse-stream';
import { encodeHeaderValue, MCP_METHOD_HEADER, MCP_NAME_HEADER } from '../domain/mirrored-headers';

interface Pooled {
  fingerprint: string;
  client: Promise<Client>;
  /** Set once the session is up, for HTTP upstreams (their `initialize` answered with application/json or text/event-stream). */
  direct?: DirectSession;
  /** The upstream gave the session an id (Mcp-Session-Id): a 404 to a request carrying it means the session is gone. */
  sessionful?: boolean;
  /** The SDK client closed: its transport closed (a stdio process that exited), or Tollgate closed it (retire). */
  closed?: boolean;
  /** Tollgate retired the session (forget(), or a failure of the session): calls it ends get no verdict on the upstream. */
  retired?: boolean;
  /** Why the transport failed before it closed (a stdio message over the size cap), for the calls it ended. */
  failure?: string;
  /** A call ended by the transport closing on its own has reported it (counted once against the upstream). */
  closeReported?: boolean;
}

/** What a tools/call needs to be sent without the SDK client: the session the SDK negotiated. */
interface DirectSession {
  upstreamId: string;
  url: URL;
  headers: Record<string, string>;
  /** Aborts of the POSTs in flight: forget() (an upstream changed or removed, shutdown) fails them. */
  inFlight: Set<() => void>;
  /** Retired from the pool while calls were in flight: kept in `draining` until they settle. */
  retired?: boolean;
}

/*
 * Tollgate's own events on a call, as errors of their own: an upstream may
 * answer any JSON-RPC error code, the SDK's local ones (-32000 ConnectionClosed,
 * -32001 RequestTimeout) included, and that answer is the upstream's error.
 */
/** The call's timer fired (Tollgate's, on both paths). */
class LocalTimeout extends Error {}
/** The session the call ran on closed under it. `counts`: against the upstream's circuit (its own transport failed). */
class SessionClosed extends Error {
  constructor(
    readonly counts: boolean,
    readonly reason = 'connection closed',
  ) {
    super(reason);
  }
}
/** The upstream no longer has the session (HTTP 404 to a request carrying its id), or the SDK client lost its transport: nothing was run, a new session may be opened and the request sent again. */
class SessionGone extends Error {}
/** The POST of a call could not be sent (connection refused or reset, DNS): the session is dropped, the next call opens a new one. */
class SessionUnreachable extends Error {
  constructor(cause: Error) {
    // As the SDK's fetch reports it: `fetch failed`, with the cause (and its code).
    super('fetch failed', { cause });
  }
}

/** JSON-RPC ids of direct calls: a range the SDK client's own counter (0, 1, 2, …) never reaches. */
let nextDirectId = 1_000_000_000;
/** Progress tokens of calls sent through the SDK client (direct calls use their request id). */
let nextProgressToken = 1;

const CLIENT_INFO = { name: 'tollgate', version: '0.1.0' };

/**
 * Speaks MCP to upstreams with the official SDK client. One initialized
 * session per upstream is kept open and shared by every caller (requests are
 * multiplexed over it), so a tool call never pays for a new handshake. A
 * session that fails as a session (the upstream lost it, cannot be reached,
 * a stdio process exited) is dropped and re-established on the next call,
 * at once for a request it never ran (withClient); a call that fails on its
 * own (an answer too large or malformed, the upstream's JSON-RPC error)
 * leaves the session and the other calls on it alone.
 *
 * On HTTP upstreams the SDK client opens the session (initialize, and the
 * listening GET stream) and lists tools, but tools/call, the hot path, is
 * sent without it (directCall): the same exchange the SDK client has with
 * the upstream, JSON or SSE answer alike, hand-written over node:http
 * because the SDK client's fetch and Web-streams path costs several times
 * the CPU (bench/README.md, LEG). Stdio upstreams use the SDK client only.
 */
@Injectable()
export class SdkUpstreamConnector extends UpstreamConnector implements OnModuleDestroy {
  private readonly logger = new Logger(SdkUpstreamConnector.name);
  private readonly pool = new Map<string, Pooled>();
  /**
   * Per pooled SDK client: progress callbacks of the calls in flight through
   * it, by the progress token Tollgate sent. Per client, so that an upstream
   * can only report progress on calls sent to it, never on another's.
   */
  private readonly progressListeners = new WeakMap<Client, Map<number, (progress: ToolProgress) => void>>();

  async listTools(upstream: Upstream): Promise<UpstreamTool[]> {
    return this.withClient(upstream, async (client, entry) => {
      const tools: UpstreamTool[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 50; page++) {
        const params = cursor ? { cursor } : undefined;
        const res = await this.viaSdk(entry, upstream.timeoutMs, undefined, (options) => client.listTools(params, options));
        for (const t of res.tools) tools.push(upstreamTool(t));
        cursor = res.nextCursor;
        if (!cursor) break;
      }
      return tools;
    });
  }

  async callTool(upstream: Upstream, tool: string, args: Record<string, unknown>, options: ToolCallOptions = {}): Promise<Record<string, unknown>> {
    const { cancellation } = options;
    if (cancellation?.cancelled) throw new ToolCallCancelledError(cancellation.reason);
    return this.withClient(upstream, async (client, entry) => {
      // Cancelled while the session was being set up: nothing was sent. From here to the request's
      // send (and the listener's registration) the code is synchronous, so no cancellation slips in.
      if (cancellation?.cancelled) throw new ToolCallCancelledError(cancellation.reason);
      if (entry.direct) return this.directCall(upstream, entry.direct, tool, args, options);
      const { meta, onProgress } = options;
      const listeners = this.progressListeners.get(client);
      const token = onProgress && listeners ? nextProgressToken++ : undefined;
      if (token !== undefined) listeners!.set(token, onProgress!);
      try {
        const _meta = token !== undefined ? { ...meta, progressToken: token } : meta;
        const request = { method: 'tools/call' as const, params: { name: tool, arguments: args, ...(_meta ? { _meta } : {}) } };
        // The schema keeps unknown members: the result is forwarded as the upstream produced it.
        return (await this.viaSdk(entry, upstream.timeoutMs, cancellation, (o) => client.request(request, CallToolResultSchema, o))) as Record<string, unknown>;
      } finally {
        if (token !== undefined) listeners!.delete(token);
      }
    });
  }

  /**
   * Drops the upstream's session (it was changed or removed, or Tollgate is
   * shutting down): the calls in flight on it, and on its sessions retired
   * earlier, fail at once (released and refunded, no verdict on the upstream).
   */
  async forget(upstreamId: string): Promise<void> {
    for (const direct of [...this.draining]) if (direct.upstreamId === upstreamId) this.abortAll(direct);
    const pooled = this.pool.get(upstreamId);
    if (!pooled) return;
    if (pooled.direct) this.abortAll(pooled.direct);
    await this.retire(upstreamId, pooled);
  }

  async onModuleDestroy(): Promise<void> {
    for (const direct of [...this.draining]) this.abortAll(direct);
    await Promise.all([...this.pool.keys()].map((id) => this.forget(id)));
  }

  /** Sessions retired while calls were still in flight on them, until those settle (forget() and shutdown can still end them). */
  private readonly draining = new Set<DirectSession>();

  private abortAll(direct: DirectSession): void {
    for (const abort of [...direct.inFlight]) abort();
  }

  /**
   * Takes `entry` out of the pool, if it still is the upstream's session (a
   * newer one is left alone), and closes its SDK client. Calls in flight on
   * it as direct POSTs are left to finish: only forget() ends them.
   */
  private async retire(upstreamId: string, entry: Pooled): Promise<void> {
    if (this.pool.get(upstreamId) === entry) this.pool.delete(upstreamId);
    if (entry.retired) return;
    entry.retired = true;
    const direct = entry.direct;
    if (direct && direct.inFlight.size > 0) {
      direct.retired = true;
      this.draining.add(direct);
    }
    await entry.client.then((c) => c.close()).catch(() => undefined);
  }

  /**
   * Runs `work` on the upstream's pooled session. A failure of the session
   * itself (the upstream no longer has it, cannot be reached, a stdio process
   * gone) retires that session; one that says the request was never run
   * (SessionGone) is retried once on a new session, as the MCP transport
   * asks of a client whose session got 404. Any other failure (an answer too
   * large or malformed, an HTTP error to one POST, the upstream's JSON-RPC
   * error) fails that call only: the session and the calls sharing it go on.
   */
  private async withClient<T>(upstream: Upstream, work: (client: Client, entry: Pooled) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const entry = this.session(upstream);
      let client: Client;
      try {
        client = await entry.client;
      } catch (err) {
        void this.retire(upstream.id, entry);
        throw this.translate(upstream, err);
      }
      try {
        return await work(client, entry);
      } catch (err) {
        if (err instanceof SessionGone || err instanceof SessionUnreachable) {
          void this.retire(upstream.id, entry);
          if (err instanceof SessionGone && attempt === 0) continue;
        }
        throw this.translate(upstream, err);
      }
    }
  }

  /**
   * A request through the SDK client, timed by Tollgate rather than by the
   * SDK, so that what ended it is known and not read from an error code the
   * upstream may send as well: the call's timer (LocalTimeout; the SDK client
   * sends notifications/cancelled on the abort), the caller's cancellation,
   * the session's transport closing (SessionClosed), or a request never sent
   * (SessionGone). Any McpError left is the upstream's answer.
   */
  private async viaSdk<T>(entry: Pooled, timeoutMs: number, cancellation: CallCancellation | undefined, send: (options: RequestOptions) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort('Request timed out');
    }, timeoutMs);
    const stopListening = cancellation?.onCancel((reason) => abort.abort(reason));
    try {
      // The SDK's own timeout is a backstop only: Tollgate's timer fires first.
      return await send({ timeout: timeoutMs + SDK_TIMEOUT_SLACK_MS, signal: abort.signal });
    } catch (err) {
      if (timedOut) throw new LocalTimeout();
      // The SDK rejects an aborted request with a RequestTimeout McpError: it is the caller's cancellation.
      if (abort.signal.aborted) throw new ToolCallCancelledError(cancellation?.reason, true);
      if (entry.closed && err instanceof McpError && err.code === ErrorCode.ConnectionClosed) {
        // A transport that closed on its own (a stdio process that exited) is counted once against the upstream.
        const counts = !entry.retired && !entry.closeReported;
        entry.closeReported = true;
        throw new SessionClosed(counts, entry.failure);
      }
      // The SDK client without a transport, or its stdio transport without a process: the request was never sent.
      if (err instanceof Error && err.message === 'Not connected') throw new SessionGone(err.message);
      if (err instanceof TypeError && err.message === 'fetch failed') throw new SessionUnreachable((err.cause as Error | undefined) ?? err);
      if (err instanceof StreamableHTTPError && err.code === 404 && entry.sessionful) throw new SessionGone(err.message);
      throw err;
    } finally {
      // A cancellation after the answer (the client leaving before it is written) sends the upstream nothing.
      clearTimeout(timer);
      stopListening?.();
    }
  }

  private session(upstream: Upstream): Pooled {
    const fingerprint = `${upstream.url}|${upstream.updatedAt.getTime()}`;
    const pooled = this.pool.get(upstream.id);
    if (pooled && pooled.fingerprint === fingerprint) return pooled;
    if (pooled) void this.forget(upstream.id);
    const entry: Pooled = { fingerprint, client: Promise.resolve(undefined as unknown as Client) };
    const client = (async () => {
      const c = new Client(CLIENT_INFO, { capabilities: {} });
      // Progress goes through this handler, not the request's `onprogress` option: the SDK client runs
      // a progress notification's handler a microtask after reading it, but forgets the request's
      // `onprogress` as soon as it reads the response, so the last progress before the result (read
      // in the same chunk, as on stdio) was lost. The listener here stays until the call has settled.
      // It replaces the SDK's own progress handler, which serves only `onprogress`, request timeouts
      // reset on progress and tasks: Tollgate's calls use none of them.
      const listeners = new Map<number, (progress: ToolProgress) => void>();
      this.progressListeners.set(c, listeners);
      c.setNotificationHandler(ProgressNotificationSchema, (n) => {
        const listener = listeners.get(n.params.progressToken as number);
        const progress = progressOf(n.params);
        if (listener && progress) listener(progress);
      });
      const transport = upstream.stdio
        ? new StdioClientTransport({
            command: upstream.stdio.command,
            args: upstream.stdio.args,
            env: { ...getDefaultEnvironment(), ...upstream.stdio.env },
            stderr: 'ignore',
            // One message (a line) larger than this stops the process (the SDK's ReadBuffer cannot skip it).
            maxBufferSize: MAX_UPSTREAM_RESPONSE_BYTES,
          })
        : new StreamableHTTPClientTransport(new URL(upstream.url), {
            requestInit: { headers: upstream.headers },
            // Observes the answer to `initialize`: an upstream that answers JSON or SSE gets direct tools/calls.
            fetch: async (url, init) => {
              const res = await fetch(url, init);
              if (init?.method === 'POST' && initContentType === undefined) initContentType = res.headers.get('content-type') ?? '';
              return limitBody(res);
            },
          });
      let initContentType: string | undefined;
      c.onerror = (e) => {
        if (STDIO_TOO_LARGE.test(e.message)) entry.failure = `${tooLarge().message} (the stdio process was stopped)`;
        this.logger.debug(`upstream ${upstream.name}: ${safeReason(e.message, upstream)}`);
      };
      // A stdio process that exits (or an SDK client closed for any reason) leaves the pool: the next call starts a new one.
      c.onclose = () => {
        entry.closed = true;
        if (this.pool.get(upstream.id) === entry) this.pool.delete(upstream.id);
      };
      await this.viaSdk(entry, upstream.timeoutMs, undefined, (options) => c.connect(transport, options));
      if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) entry.sessionful = true;
      if (transport instanceof StreamableHTTPClientTransport && this.pool.get(upstream.id) === entry && isJsonOrEventStream(initContentType)) {
        const headers: Record<string, string> = {
          ...upstream.headers,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        };
        if (transport.sessionId) headers['mcp-session-id'] = transport.sessionId;
        if (transport.protocolVersion) headers['mcp-protocol-version'] = transport.protocolVersion;
        entry.direct = { upstreamId: upstream.id, url: new URL(upstream.url), headers, inFlight: new Set() };
      }
      return c;
    })();
    entry.client = client;
    this.pool.set(upstream.id, entry);
    return entry;
  }

  /**
   * tools/call as one JSON-RPC POST over a keep-alive node:http agent, for
   * HTTP upstreams whether they answer JSON (enableJsonResponse) or an SSE
   * stream. This hand-writes what the SDK client does for that exchange,
   * because its path (WHATWG fetch, Web streams, Request/Response objects)
   * cost Tollgate more CPU than the rest of a call (bench/README.md).
   * Fidelity with the SDK path:
   * - same request: method, params, session id, negotiated protocol version,
   *   the upstream's configured headers;
   * - same reading of the answer: a JSON body, or an SSE stream parsed as it
   *   arrives with the parser the SDK uses (eventsource-parser), settled by
   *   the response with our id; progress under the call's token goes to
   *   onProgress, other notifications on the stream are ignored (the SDK
   *   client has no handlers for them); requests from the server are
   *   answered as the SDK client with no capabilities answers them (replyTo);
   *   a stream that ends without the response is resumed with Last-Event-ID
   *   when its events carry ids, as the SDK transport does (exchange);
   * - same result: validated and shaped by the SDK's own CallToolResultSchema;
   * - same errors: a JSON-RPC error becomes the SDK's McpError (always the
   *   upstream's), HTTP and network failures the SDK's messages, and
   *   translate() maps them all; Tollgate's own events have errors of their
   *   own (LocalTimeout, SessionClosed, SessionGone, SessionUnreachable);
   * - timeout: after which notifications/cancelled is sent, as the SDK client does;
   * - cancellation: once `cancellation` is cancelled, notifications/cancelled for the
   *   request (with the caller's reason), as the SDK client sends on abort.
   */
  private async directCall(
    upstream: Upstream,
    direct: DirectSession,
    tool: string,
    args: Record<string, unknown>,
    { meta, onProgress, cancellation }: ToolCallOptions,
  ): Promise<Record<string, unknown>> {
    const id = nextDirectId++;
    // The progress token is the request id, as the SDK client does: unique on the shared session.
    const _meta = onProgress ? { ...meta, progressToken: id } : meta;
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args, ...(_meta ? { _meta } : {}) } });
    let response: RpcResponse;
    try {
      // SEP-2243: the method and the tool it addresses, mirrored in headers for the upstream's intermediaries.
      const mirrored = { [MCP_METHOD_HEADER]: 'tools/call', [MCP_NAME_HEADER]: encodeHeaderValue(tool) };
      response = await this.exchange(direct, id, body, upstream.timeoutMs, mirrored, onProgress, cancellation);
    } catch (err) {
      if (err instanceof LocalTimeout || (err instanceof ToolCallCancelledError && err.sent)) {
        const reason = err instanceof ToolCallCancelledError ? err.reason : 'Request timed out';
        this.notify(direct, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, ...(reason ? { reason } : {}) } }), upstream.timeoutMs);
      }
      throw err;
    }
    if (response.error) throw new McpError(response.error.code, response.error.message, response.error.data);
    const parsed = CallToolResultSchema.safeParse(response.result);
    if (!parsed.success) throw parsed.error;
    return parsed.data as Record<string, unknown>;
  }

  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });

  /**
   * Sends one JSON-RPC request as a POST and settles with the response that
   * carries its id: read whole from an application/json answer, or event by
   * event from a text/event-stream answer, settling as soon as the response
   * arrives (the rest of the stream is drained, so the socket is reused, or
   * dropped if it does not end soon). Like the SDK transport, a stream that
   * ends or breaks without the response is resumed when its events carried
   * ids: a GET with Last-Event-ID after the server's `retry:` (or the SDK's
   * backoff), at most MAX_RESUME_ATTEMPTS times in a row without progress.
   * Every byte read counts against MAX_UPSTREAM_RESPONSE_BYTES, and the
   * whole exchange, resumptions included, against `timeoutMs` (then
   * LocalTimeout). A cancellation settles it at once with
   * ToolCallCancelledError; forget() with SessionClosed.
   */
  private exchange(
    direct: DirectSession,
    id: number,
    body: string,
    timeoutMs: number,
    mirrored: Record<string, string>,
    onProgress?: (progress: ToolProgress) => void,
    cancellation?: CallCancellation,
  ): Promise<RpcResponse> {
    return new Promise((resolve, reject) => {
      let req: ClientRequest; // the request being read: the POST, then any GET resuming its stream
      let done = false;
      let received = 0;
      let resumes = 0; // resumption attempts since the stream last brought a new event
      let resumeTimer: NodeJS.Timeout | undefined;
      // To the caller's cancellation (callTool made sure it is not cancelled yet, so onCancel does not call finish at once).
      // eslint-disable-next-line prefer-const -- finish(), defined first, reads it
      let stopListening: (() => void) | undefined;

      const finish = (err: Error | undefined, response?: RpcResponse) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(resumeTimer);
        direct.inFlight.delete(abort);
        if (direct.retired && direct.inFlight.size === 0) this.draining.delete(direct);
        stopListening?.();
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(response as RpcResponse);
      };
      // Tollgate's own events, never an McpError: that is what the upstream answers.
      const timer = setTimeout(() => finish(new LocalTimeout()), timeoutMs);
      const abort = () => finish(new SessionClosed(false));
      direct.inFlight.add(abort);
      const withinCap = (chunk: Buffer): boolean => {
        received += chunk.length;
        if (received <= MAX_UPSTREAM_RESPONSE_BYTES) return true;
        finish(tooLarge());
        return false;
      };

      const events = new SseMessageReader((message) => {
        if (done) return;
        if (isResponseTo(message, id)) finish(undefined, message);
        else if (isServerRequest(message)) this.notify(direct, JSON.stringify(replyTo(message)), timeoutMs);
        else if (onProgress && isProgressOf(message, id)) {
          const progress = progressOf(message.params);
          if (progress) onProgress(progress);
        }
        // Other notifications (logging, list changes, progress of other tokens): ignored, as by the SDK client, which has no handler for them.
      });

      /** Reads an SSE answer as it arrives; `interrupted` when it ends or breaks without the response. */
      const readEvents = (res: IncomingMessage) => {
        const idAtStart = events.lastEventId;
        events.reset();
        let drain: NodeJS.Timeout | undefined;
        res.on('data', (chunk: Buffer) => {
          if (done || !withinCap(chunk)) return;
          events.push(chunk);
          if (done && !res.complete) drain = setTimeout(() => res.destroy(), DRAIN_MS).unref();
        });
        res.once('end', () => {
          clearTimeout(drain);
          if (!done) interrupted(new Error(NO_RESPONSE), events.lastEventId !== idAtStart);
        });
        res.once('error', (err) => {
          clearTimeout(drain);
          if (!done) interrupted(fetchFailed(err), events.lastEventId !== idAtStart);
        });
      };

      /** The stream stopped short: resumed if its events had ids, else the call fails with `err`. */
      const interrupted = (err: Error, progressed: boolean) => {
        if (progressed) resumes = 0;
        if (events.lastEventId === undefined || resumes >= MAX_RESUME_ATTEMPTS) return finish(err);
        const delay = Math.min(events.retryMs ?? 1000 * 1.5 ** resumes, MAX_RESUME_DELAY_MS);
        resumes++;
        resumeTimer = setTimeout(resume, delay);
      };

      const resume = () => {
        // The SDK's GET: the session headers, no body, only an event stream accepted, and where to resume from.
        const headers: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(direct.headers)) if (k.toLowerCase() !== 'content-type' && k.toLowerCase() !== 'accept') headers[k] = v;
        headers.accept = 'text/event-stream';
        headers['last-event-id'] = events.lastEventId;
        req = this.request(direct, 'GET', headers);
        req.once('error', (err) => {
          if (!done) interrupted(fetchFailed(err), false);
        });
        req.once('response', (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          if (done || status < 200 || status >= 300) res.resume();
          if (done) return;
          // 405: the server offers no stream to resume (the SDK stops there too).
          if (status === 405) finish(new Error(NO_RESPONSE));
          else if (status < 200 || status >= 300) interrupted(new Error(`Streamable HTTP error: Failed to open SSE stream: ${res.statusMessage ?? status}`), false);
          else readEvents(res);
        });
        req.end();
      };

      req = this.request(direct, 'POST', { ...direct.headers, ...mirrored, 'content-length': Buffer.byteLength(body) });
      // Not even an answer: the upstream is down or restarting; the session goes with it.
      req.once('error', (err) => finish(new SessionUnreachable(err)));
      req.once('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const contentType = String(res.headers['content-type'] ?? '');
        const ok = status >= 200 && status < 300;
        if (ok && contentType.toLowerCase().startsWith('text/event-stream')) return readEvents(res);
        // Anything else is read whole: a JSON answer, or the text of an HTTP error.
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (!done && withinCap(chunk)) chunks.push(chunk);
        });
        res.once('error', (err) => finish(fetchFailed(err)));
        res.once('end', () => {
          if (done) return;
          const text = Buffer.concat(chunks).toString('utf8');
          if (!ok) {
            const message = `Streamable HTTP error: Error POSTing to endpoint: ${text}`;
            // 404 to a request carrying the session id: the upstream no longer has the session (a restart) and ran nothing.
            return finish(status === 404 && direct.headers['mcp-session-id'] ? new SessionGone(message) : new Error(message));
          }
          if (!contentType.toLowerCase().startsWith('application/json')) return finish(new Error(`Unexpected content type: ${contentType}`));
          let messages: unknown;
          try {
            messages = JSON.parse(text);
          } catch (err) {
            return finish(err as Error);
          }
          const response = (Array.isArray(messages) ? messages : [messages]).find((m) => isResponseTo(m, id));
          finish(response ? undefined : new Error(NO_RESPONSE), response);
        });
      });
      req.end(body);
      const post = req;
      // Sent once the POST has left for the upstream (a resumption GET implies it has). Cancelled before (a
      // new connection still opening, say), the upstream never sees the call: it is not charged.
      stopListening = cancellation?.onCancel((reason) => finish(new ToolCallCancelledError(reason, req !== post || post.writableFinished)));
    });
  }

  /** A POST whose answer is not awaited (a notification, or the reply to a server's request): drained, errors ignored. */
  private notify(direct: DirectSession, body: string, timeoutMs: number): void {
    const req = this.request(direct, 'POST', { ...direct.headers, 'content-length': Buffer.byteLength(body) });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.once('error', () => undefined);
    req.once('response', (res: IncomingMessage) => {
      res.once('error', () => undefined);
      res.resume();
    });
    req.end(body);
  }

  private request(direct: DirectSession, method: 'GET' | 'POST', headers: OutgoingHttpHeaders): ClientRequest {
    const https = direct.url.protocol === 'https:';
    return (https ? httpsRequest : httpRequest)(direct.url, { method, agent: https ? this.httpsAgent : this.httpAgent, headers });
  }

  private translate(upstream: Upstream, err: unknown): Error {
    if (err instanceof UpstreamFailureError || err instanceof UpstreamTimeoutError || err instanceof UpstreamProtocolError || err instanceof ToolCallCancelledError) {
      return err;
    }
    if (err instanceof LocalTimeout) return new UpstreamTimeoutError(upstream.name, upstream.timeoutMs);
    if (err instanceof SessionClosed) return err.counts ? new UpstreamFailureError(upstream.name, err.reason) : new UpstreamSessionClosedError(upstream.name, err.reason);
    // Tollgate's own events all have errors of their own (above): an McpError is the upstream's JSON-RPC error, whatever its code.
    if (err instanceof McpError) {
      return new UpstreamProtocolError(upstream.name, err.code, safeReason(err.message.replace(/^MCP error -?\d+: /, ''), upstream), err.data);
    }
    const e = err as { name?: string; message?: string; cause?: { code?: string } };
    const reason = e?.cause?.code ?? e?.message ?? 'unreachable';
    // Redacted before it is cut: a cut could leave the start of a value that redaction no longer recognises.
    return new UpstreamFailureError(upstream.name, safeReason(String(reason), upstream).slice(0, 200));
  }
}

/**
 * An error message as it may reach a problem+json `detail`, an agent or a log
 * line, without the upstream's header values (credentials): undici's header
 * errors are replaced whole (Headers.append quotes the value, trimmed, so it
 * may not match it exactly; the ByteString error points at one of its
 * characters), and any other occurrence, such as an upstream quoting the
 * token it refused in its HTTP error body, is redacted.
 */
function safeReason(message: string, upstream: Upstream): string {
  if (/is an invalid header value|convert argument to a ByteString/i.test(message)) return 'a configured header value cannot be sent';
  return redactHeaderValues(message, upstream.headers);
}

/** The JSON-RPC response to a direct request. */
interface RpcResponse {
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

const NO_RESPONSE = 'The upstream answered without a JSON-RPC response to the call';
/** Resumptions in a row that bring no new event before the call fails: the SDK transport's default maxRetries. */
const MAX_RESUME_ATTEMPTS = 2;
/** Longest wait before resuming a stream (the SDK waits the server's `retry:`, else 1 s growing 1.5× per attempt). */
const MAX_RESUME_DELAY_MS = 1_000;
/** How long the rest of an answered stream may take to end before its socket is dropped instead of reused. */
const DRAIN_MS = 1_000;

function isJsonOrEventStream(contentType: string | undefined): boolean {
  const type = contentType?.toLowerCase() ?? '';
  return type.startsWith('application/json') || type.startsWith('text/event-stream');
}

function isResponseTo(message: unknown, id: number): message is RpcResponse {
  return typeof message === 'object' && message !== null && (message as { id?: unknown }).id === id && ('result' in message || 'error' in message);
}

/** A `notifications/progress` for the request whose progress token is `token`. */
function isProgressOf(message: unknown, token: number): message is { params: Record<string, unknown> } {
  if (typeof message !== 'object' || message === null) return false;
  const { method, params, id } = message as { method?: unknown; params?: { progressToken?: unknown }; id?: unknown };
  return method === 'notifications/progress' && id === undefined && params?.progressToken === token;
}

/** The fields of a progress notification the spec defines, when `progress` is a number (others are dropped, not relayed). */
function progressOf(params: Record<string, unknown>): ToolProgress | undefined {
  const { progress, total, message } = params;
  if (typeof progress !== 'number' || !Number.isFinite(progress)) return undefined;
  return {
    progress,
    ...(typeof total === 'number' && Number.isFinite(total) ? { total } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

/** A request from the server (sampling/createMessage, elicitation/create, roots/list, ping, …): a method and an id. */
function isServerRequest(message: unknown): message is { id: string | number; method: string } {
  if (typeof message !== 'object' || message === null) return false;
  const { id, method } = message as { id?: unknown; method?: unknown };
  return typeof method === 'string' && (typeof id === 'string' || typeof id === 'number');
}

/**
 * The SDK client's answer to a server's request when it has no handler for
 * it (Protocol._onrequest): -32601 Method not found; `ping` is the exception,
 * answered `{}` by the handler Protocol installs by default. A client
 * declaring no capabilities, as Tollgate's, installs no other handler.
 */
function replyTo(request: { id: string | number; method: string }): Record<string, unknown> {
  return request.method === 'ping'
    ? { jsonrpc: '2.0', id: request.id, result: {} }
    : { jsonrpc: '2.0', id: request.id, error: { code: ErrorCode.MethodNotFound, message: 'Method not found' } };
}

/** How the SDK's fetch reports a network failure: `fetch failed`, with the cause (and its code). */
function fetchFailed(cause: Error): Error {
  return Object.assign(new Error('fetch failed'), { cause });
}

/** Largest upstream answer Tollgate reads; beyond it the call fails with upstream_error (never buffered whole). */
export const MAX_UPSTREAM_RESPONSE_BYTES = 16 * 1024 * 1024;
/** What the SDK's stdio ReadBuffer reports (to onerror) when a message passes maxBufferSize, before it stops the process. */
const STDIO_TOO_LARGE = /^ReadBuffer exceeded maximum size/;
/** How much later than Tollgate's timer the SDK client's own request timeout (a backstop) fires. */
const SDK_TIMEOUT_SLACK_MS = 1_000;

/** A tool of a tools/list result as stored: the SDK's parsed Tool (its known members), every one the upstream gave. */
function upstreamTool(t: Tool): UpstreamTool {
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    ...(t.description ? { description: t.description } : {}),
    inputSchema: t.inputSchema as Record<string, unknown>,
    ...(t.outputSchema ? { outputSchema: t.outputSchema as Record<string, unknown> } : {}),
    ...(t.annotations ? { annotations: t.annotations as Record<string, unknown> } : {}),
    ...(t.icons?.length ? { icons: t.icons as Record<string, unknown>[] } : {}),
    ...(t.execution ? { execution: t.execution as Record<string, unknown> } : {}),
    ...(t._meta && Object.keys(t._meta).length ? { _meta: t._meta } : {}),
  };
}

function tooLarge(): Error {
  return new Error(`upstream response larger than ${MAX_UPSTREAM_RESPONSE_BYTES} bytes`);
}

/** The same cap on the SDK transport's responses (JSON or SSE), counted as the body streams in. */
function limitBody(res: Response): Response {
  if (!res.body) return res;
  let received = 0;
  const limited = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.byteLength;
        if (received > MAX_UPSTREAM_RESPONSE_BYTES) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(limited, { status: res.status, statusText: res.statusText, headers: res.headers });
}
