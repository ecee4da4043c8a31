import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { ClientRequest, Agent as HttpAgent, request as httpRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ErrorCode, McpError, ProgressNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { redactHeaderValues, type Upstream, type UpstreamTool } from '../domain/upstream';
import { ToolCallCancelledError, UpstreamFailureError, UpstreamProtocolError, UpstreamTimeoutError } from '../domain/mcp.errors';
import { ToolCallOptions, ToolProgress, UpstreamConnector } from '../domain/upstream.repository';
import type { CallCancellation } from '../domain/call-cancellation';
import { SseMessageReader } from './sse-stream';
import { encodeHeaderValue, MCP_METHOD_HEADER, MCP_NAME_HEADER } from '../domain/mirrored-headers';

interface Pooled {
  fingerprint: string;
  client: Promise<Client>;
  /** Set once the session is up, for HTTP upstreams (their `initialize` answered with application/json or text/event-stream). */
  direct?: DirectSession;
}

/** What a tools/call needs to be sent without the SDK client: the session the SDK negotiated. */
interface DirectSession {
  url: URL;
  headers: Record<string, string>;
  /** Aborts of the POSTs in flight: closing the session fails them, as closing the SDK client fails its requests. */
  inFlight: Set<() => void>;
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
 * session that fails is dropped and re-established on the next call.
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
    return this.withClient(upstream, async (client) => {
      const tools: UpstreamTool[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 50; page++) {
        const res = await client.listTools(cursor ? { cursor } : undefined, { timeout: upstream.timeoutMs });
        for (const t of res.tools) {
          tools.push({
            name: t.name,
            ...(t.title ? { title: t.title } : {}),
            ...(t.description ? { description: t.description } : {}),
            inputSchema: t.inputSchema as Record<string, unknown>,
            ...(t.outputSchema ? { outputSchema: t.outputSchema as Record<string, unknown> } : {}),
            ...(t.annotations ? { annotations: t.annotations as Record<string, unknown> } : {}),
          });
        }
        cursor = res.nextCursor;
        if (!cursor) break;
      }
      return tools;
    });
  }

  async callTool(upstream: Upstream, tool: string, args: Record<string, unknown>, options: ToolCallOptions = {}): Promise<Record<string, unknown>> {
    const { cancellation } = options;
    if (cancellation?.cancelled) throw new ToolCallCancelledError(cancellation.reason);
    return this.withClient(upstream, async (client, direct) => {
      // Cancelled while the session was being set up: nothing was sent. From here to the request's
      // send (and the listener's registration) the code is synchronous, so no cancellation slips in.
      if (cancellation?.cancelled) throw new ToolCallCancelledError(cancellation.reason);
      if (direct) return this.directCall(upstream, direct, tool, args, options);
      const { meta, onProgress } = options;
      // On abort the SDK client sends the upstream notifications/cancelled for this request itself.
      const abort = cancellation ? new AbortController() : undefined;
      const stopListening = cancellation?.onCancel((reason) => abort!.abort(reason));
      const listeners = this.progressListeners.get(client);
      const token = onProgress && listeners ? nextProgressToken++ : undefined;
      if (token !== undefined) listeners!.set(token, onProgress!);
      try {
        const _meta = token !== undefined ? { ...meta, progressToken: token } : meta;
        const result = await client.request(
          { method: 'tools/call', params: { name: tool, arguments: args, ...(_meta ? { _meta } : {}) } },
          // The schema keeps unknown members: the result is forwarded as the upstream produced it.
          CallToolResultSchema,
          { timeout: upstream.timeoutMs, ...(abort ? { signal: abort.signal } : {}) },
        );
        return result as Record<string, unknown>;
      } catch (err) {
        // The SDK rejects a cancelled request with a RequestTimeout McpError: it is the caller's cancellation.
        throw abort?.signal.aborted ? new ToolCallCancelledError(cancellation!.reason, true) : err;
      } finally {
        // A cancellation after the answer (the client leaving before it is written) sends the upstream nothing.
        stopListening?.();
        if (token !== undefined) listeners!.delete(token);
      }
    });
  }

  async forget(upstreamId: string): Promise<void> {
    const pooled = this.pool.get(upstreamId);
    this.pool.delete(upstreamId);
    // Shutdown past its deadline (and a replaced session) must make running calls fail, so they are released and refunded.
    if (pooled?.direct) for (const abort of [...pooled.direct.inFlight]) abort();
    if (pooled) await pooled.client.then((c) => c.close()).catch(() => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.pool.keys()].map((id) => this.forget(id)));
  }

  private async withClient<T>(upstream: Upstream, work: (client: Client, direct: DirectSession | undefined) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.session(upstream);
    } catch (err) {
      this.pool.delete(upstream.id);
      throw this.translate(upstream, err);
    }
    try {
      return await work(client, this.pool.get(upstream.id)?.direct);
    } catch (err) {
      const translated = this.translate(upstream, err);
      if (translated instanceof UpstreamFailureError) await this.forget(upstream.id);
      throw translated;
    }
  }

  private session(upstream: Upstream): Promise<Client> {
    const fingerprint = `${upstream.url}|${upstream.updatedAt.getTime()}`;
    const pooled = this.pool.get(upstream.id);
    if (pooled && pooled.fingerprint === fingerprint) return pooled.client;
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
      c.onerror = (e) => this.logger.debug(`upstream ${upstream.name}: ${safeReason(e.message, upstream)}`);
      await c.connect(transport, { timeout: upstream.timeoutMs });
      if (transport instanceof StreamableHTTPClientTransport && this.pool.get(upstream.id) === entry && isJsonOrEventStream(initContentType)) {
        const headers: Record<string, string> = {
          ...upstream.headers,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        };
        if (transport.sessionId) headers['mcp-session-id'] = transport.sessionId;
        if (transport.protocolVersion) headers['mcp-protocol-version'] = transport.protocolVersion;
        entry.direct = { url: new URL(upstream.url), headers, inFlight: new Set() };
      }
      return c;
    })();
    entry.client = client;
    this.pool.set(upstream.id, entry);
    return client;
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
   * - same errors: a JSON-RPC error becomes the SDK's McpError, HTTP and
   *   network failures the SDK's messages, and translate() maps them all;
   * - timeout: the SDK's RequestTimeout, after which notifications/cancelled
   *   is sent, as the SDK client does;
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
      const timedOut = err instanceof McpError && err.code === ErrorCode.RequestTimeout;
      if (timedOut || (err instanceof ToolCallCancelledError && err.sent)) {
        const reason = err instanceof ToolCallCancelledError ? err.reason : String(err);
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
   * whole exchange, resumptions included, against `timeoutMs` (then the
   * SDK's RequestTimeout McpError). A cancellation settles it at once with
   * ToolCallCancelledError.
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
        stopListening?.();
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(response as RpcResponse);
      };
      // The errors the SDK client gives for the same events: its request timeout, its closed connection.
      const timer = setTimeout(() => finish(new McpError(ErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs })), timeoutMs);
      const abort = () => finish(new McpError(ErrorCode.ConnectionClosed, 'Connection closed'));
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
      req.once('error', (err) => finish(fetchFailed(err)));
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
          if (!ok) return finish(new Error(`Streamable HTTP error: Error POSTing to endpoint: ${text}`));
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
    if (err instanceof McpError) {
      if (err.code === ErrorCode.RequestTimeout) return new UpstreamTimeoutError(upstream.name, upstream.timeoutMs);
      if (err.code === ErrorCode.ConnectionClosed) return new UpstreamFailureError(upstream.name, 'connection closed');
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
