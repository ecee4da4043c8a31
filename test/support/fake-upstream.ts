import { randomUUID } from 'node:crypto';
import { createServer, IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { EventStore, StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolResult,
  CreateMessageResultSchema,
  ElicitResultSchema,
  EmptyResultSchema,
  ErrorCode,
  isInitializeRequest,
  JSONRPCMessage,
  ListRootsResultSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** How the fake answers HTTP: normally, never (connection accepted, no reply), or with broken JSON. */
export type FakeUpstreamMode = 'normal' | 'hang' | 'malformed';

/** A 1×1 transparent PNG. */
export const FAKE_IMAGE_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

export const BOOM_MESSAGE = 'boom: the widget id must be a positive integer';

export interface FakeUpstreamOptions {
  /**
   * How requests are answered: 'json' (the default), by a stateless server
   * with enableJsonResponse; 'sse', by a stateful server (one session per
   * client, like server-everything) answering each request with an SSE
   * stream, which also has the tools progress, chatty, ask, cut and poll.
   */
  answer?: 'json' | 'sse';
  /**
   * With answer 'sse': an event store, so stream events carry ids and a
   * stream that ends early can be resumed with Last-Event-ID; `retryMs` is
   * announced as the streams' `retry:`.
   */
  resumable?: { retryMs?: number };
}

/**
 * An in-process upstream MCP server for fault tests: the official SDK
 * `McpServer` behind a `StreamableHTTPServerTransport` (stateless by default) on a
 * node:http server bound to 127.0.0.1 (free port, kept across restarts).
 *
 * Tools: echo, slow ({ms}), fail (isError result), boom (JSON-RPC error
 * -32602; with arguments {code, message}, that error exactly), image (image
 * content + structuredContent with an outputSchema), huge ({bytes}).
 * `calls` counts tools/call requests that reached the HTTP server, per tool;
 * `methods` counts every JSON-RPC method (e.g. `initialize`).
 *
 * With `{ answer: 'sse' }` (FakeUpstreamOptions) the server keeps sessions
 * and answers with SSE streams, and has five more tools that use them:
 * progress ({steps}: progress under the call's token, result = the _meta it
 * received), chatty ({count}: progress and log notifications before the result), ask
 * (requests to the client: sampling, elicitation, roots, ping; the result
 * reports their answers), cut (a log notification, then the connection is
 * destroyed before the result) and poll (the server closes the stream, as
 * for SSE polling, and answers later: only a resumed stream gets it).
 */
export class FakeUpstream {
  port = 0;
  mode: FakeUpstreamMode = 'normal';
  readonly calls = new Map<string, number>();
  readonly methods = new Map<string, number>();
  /** The headers of every HTTP request received, oldest first (e.g. to prove no caller credential is forwarded). */
  readonly requestHeaders: IncomingHttpHeaders[] = [];
  private http: HttpServer | null = null;
  private readonly sockets = new Set<Socket>();
  /** Sleeps of `slow` calls in flight: ended by stop(), so no timer outlives the fake. */
  private readonly sleeps = new Set<() => void>();
  private readonly answer: 'json' | 'sse';
  private readonly resumable: { retryMs?: number } | undefined;
  /** answer 'sse': the sessions' transports, by session id. */
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();
  /** answer 'sse': the socket of each tools/call in flight, by JSON-RPC id (for cut). */
  private readonly callSockets = new Map<string, Socket>();
  /** The Last-Event-ID of every GET that resumed a stream, oldest first. */
  readonly resumptions: string[] = [];
  /** The params of every notifications/cancelled received, oldest first. */
  readonly cancellations: { requestId?: unknown; reason?: unknown }[] = [];
  /** `slow` calls whose handler saw its request cancelled (answer 'sse': the cancellation reaches the call's session). */
  slowAborted = 0;

  constructor(options: FakeUpstreamOptions = {}) {
    this.answer = options.answer ?? 'json';
    this.resumable = options.resumable;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  callCount(tool: string): number {
    return this.calls.get(tool) ?? 0;
  }

  methodCount(method: string): number {
    return this.methods.get(method) ?? 0;
  }

  /** Starts listening (again on the same port after stop(), when it has one). */
  async start(): Promise<this> {
    const http = createServer((req, res) => void this.handle(req, res));
    http.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.port, '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
    const a = http.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    this.http = http;
    return this;
  }

  /** Stops listening and drops every open connection (hung ones included). */
  async stop(): Promise<void> {
    const http = this.http;
    this.http = null;
    if (!http) return;
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const wake of this.sleeps) wake();
    for (const transport of this.sessions.values()) void transport.close();
    this.sessions.clear();
    await closed;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Builds the MCP server the way an upstream author would, with McpServer.registerTool. */
  private buildServer(): McpServer {
    const sse = this.answer === 'sse';
    const mcp = new McpServer({ name: 'fake-upstream', version: '1.0.0' }, sse ? { capabilities: { logging: {} } } : undefined);
    mcp.registerTool(
      'echo',
      { description: 'Echoes the message back.', inputSchema: { message: z.string() } },
      async ({ message }): Promise<CallToolResult> => ({ content: [{ type: 'text', text: `echo: ${message}` }] }),
    );
    mcp.registerTool(
      'huge',
      { description: 'Answers `bytes` characters of text (an oversized payload).', inputSchema: { bytes: z.number().int().min(0).max(64 * 1024 * 1024) } },
      async ({ bytes }): Promise<CallToolResult> => ({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }),
    );
    mcp.registerTool(
      'slow',
      { description: 'Answers after `ms` milliseconds.', inputSchema: { ms: z.number().int().min(0) } },
      async ({ ms }, extra): Promise<CallToolResult> => {
        await this.sleep(ms, extra.signal);
        if (extra.signal.aborted) this.slowAborted++;
        return { content: [{ type: 'text', text: `slept ${ms} ms` }] };
      },
    );
    mcp.registerTool(
      'fail',
      { description: 'Always fails as a tool (isError result).' },
      async (): Promise<CallToolResult> => ({
        isError: true,
        content: [{ type: 'text', text: 'the widget service said no' }],
        _meta: { 'example.com/trace': 'abc123' },
      }),
    );
    mcp.registerTool(
      'boom',
      { description: 'Answers with a JSON-RPC error (-32602).', inputSchema: { id: z.number().optional() } },
      async (): Promise<CallToolResult> => {
        // Placeholder: McpServer turns handler errors into isError results, so the
        // JSON-RPC error is thrown by the wrapper installed below.
        return { content: [] };
      },
    );
    mcp.registerTool(
      'image',
      {
        description: 'Returns an image and structured metadata about it.',
        inputSchema: { label: z.string().optional() },
        outputSchema: { width: z.number(), height: z.number(), format: z.string(), label: z.string() },
        // A vendor key, and one the MCP specification reserves (not listed by Tollgate).
        _meta: { 'example.com/card': 'pixel', 'io.modelcontextprotocol/ui': { resourceUri: 'ui://image' } },
      },
      async ({ label }): Promise<CallToolResult> => {
        const structured = { width: 1, height: 1, format: 'png', label: label ?? 'pixel' };
        return {
          content: [
            { type: 'image', data: FAKE_IMAGE_PNG_BASE64, mimeType: 'image/png', annotations: { audience: ['user'], priority: 0.5 } },
            { type: 'text', text: JSON.stringify(structured) },
          ],
          structuredContent: structured,
        };
      },
    );
    if (sse) this.registerStreamTools(mcp);
    // A real JSON-RPC error from tools/call (what e.g. a low-level Server does on bad params).
    const handlers = (mcp.server as unknown as { _requestHandlers: Map<string, (req: any, extra: any) => Promise<unknown>> })._requestHandlers;
    const original = handlers.get('tools/call');
    if (!original) throw new Error('fake upstream: McpServer did not install a tools/call handler');
    handlers.set('tools/call', async (req, extra) => {
      if (req?.params?.name === 'boom') {
        // boom {code, message}: that JSON-RPC error exactly (message unprefixed), e.g. -32000 or -32001 of the upstream's own.
        const { code, message } = (req.params.arguments ?? {}) as { code?: unknown; message?: unknown };
        if (Number.isSafeInteger(code) && typeof message === 'string') throw Object.assign(new Error(message), { code });
        throw new McpError(ErrorCode.InvalidParams, BOOM_MESSAGE, { field: 'id' });
      }
      return original(req, extra);
    });
    return mcp;
  }

  /** The tools that only an SSE answer can carry: notifications and requests on the call's stream, a broken or closed stream. */
  private registerStreamTools(mcp: McpServer): void {
    mcp.registerTool(
      'progress',
      {
        description: 'Sends a progress notification under a token that is not the call\'s, then `steps` under the call\'s progressToken (if any), and answers with the request _meta it received.',
        inputSchema: { steps: z.number().int().min(0).max(20) },
      },
      async ({ steps }, extra): Promise<CallToolResult> => {
        const token = extra._meta?.progressToken;
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: 'not-this-call', progress: 99 } });
        if (token !== undefined) {
          for (let i = 1; i <= steps; i++) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
          }
        }
        return { content: [{ type: 'text', text: JSON.stringify({ received_meta: extra._meta ?? null }) }] };
      },
    );
    mcp.registerTool(
      'chatty',
      { description: 'Sends `count` progress and log notifications on its stream, then answers.', inputSchema: { count: z.number().int().min(0).max(100) } },
      async ({ count }, extra): Promise<CallToolResult> => {
        for (let i = 1; i <= count; i++) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: `chatty-${i}`, progress: i, total: count } });
          await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'chatty', data: { step: i, id: extra.requestId } } });
        }
        return { content: [{ type: 'text', text: `said ${count} things first` }] };
      },
    );
    mcp.registerTool(
      'ask',
      { description: 'Sends requests to the client on its stream (sampling, elicitation, roots, ping) and reports their answers.' },
      async (extra): Promise<CallToolResult> => {
        const asks = [
          ['sampling/createMessage', { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 } }, CreateMessageResultSchema],
          ['elicitation/create', { method: 'elicitation/create', params: { mode: 'form', message: 'Name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } } }, ElicitResultSchema],
          ['roots/list', { method: 'roots/list' }, ListRootsResultSchema],
          ['ping', { method: 'ping' }, EmptyResultSchema],
        ] as const;
        const lines: string[] = [];
        for (const [method, request, schema] of asks) {
          try {
            const result = await extra.sendRequest(request as never, schema as never, { timeout: 10_000 });
            lines.push(`${method}: result ${JSON.stringify(result)}`);
          } catch (err) {
            const e = err as McpError;
            lines.push(`${method}: error ${e.code} ${e.message}`);
          }
        }
        return { content: [{ type: 'text', text: lines.join('\n') }] };
      },
    );
    mcp.registerTool(
      'cut',
      { description: 'Sends a log notification, then the connection carrying the call is destroyed; answers 100 ms later.' },
      async (extra): Promise<CallToolResult> => {
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'about to cut' } });
        await this.sleep(50); // the notification reaches the client first
        this.callSockets.get(String(extra.requestId))?.destroy();
        await this.sleep(100);
        return { content: [{ type: 'text', text: 'answered after the cut' }] };
      },
    );
    mcp.registerTool(
      'poll',
      { description: 'Closes its stream at once (SSE polling; with an event store only), then answers after `ms` milliseconds.', inputSchema: { ms: z.number().int().min(0) } },
      async ({ ms }, extra): Promise<CallToolResult> => {
        extra.closeSSEStream?.();
        await this.sleep(ms);
        return { content: [{ type: 'text', text: `answered ${ms} ms after closing the stream` }] };
      },
    );
  }

  /** Ends early when `signal` aborts (a cancelled request). */
  private sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeps.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requestHeaders.push({ ...req.headers });
    const raw = await readBody(req);
    let body: unknown = undefined;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    for (const msg of Array.isArray(body) ? body : [body]) {
      const m = msg as { method?: string; params?: { name?: string } } | undefined;
      if (!m?.method) continue;
      this.methods.set(m.method, (this.methods.get(m.method) ?? 0) + 1);
      if (m.method === 'notifications/cancelled') this.cancellations.push({ ...((m.params ?? {}) as Record<string, unknown>) });
      if (m.method === 'tools/call' && typeof m.params?.name === 'string') {
        this.calls.set(m.params.name, (this.calls.get(m.params.name) ?? 0) + 1);
      }
    }
    if (this.mode === 'hang') return; // connection stays open, never answered
    if (this.mode === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":');
      return;
    }
    if (this.answer === 'sse') return this.handleSession(req, res, body);
    const mcp = this.buildServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** answer 'sse': one server and transport per session, created by `initialize`, SSE answers. */
  private async handleSession(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const sid = req.headers['mcp-session-id'];
    const lastEventId = req.headers['last-event-id'];
    if (req.method === 'GET' && typeof lastEventId === 'string') this.resumptions.push(lastEventId);
    const call = body as { method?: string; id?: unknown } | undefined;
    if (call?.method === 'tools/call' && call.id !== undefined) {
      const key = String(call.id);
      this.callSockets.set(key, req.socket);
      res.once('close', () => this.callSockets.delete(key));
    }
    let transport = typeof sid === 'string' ? this.sessions.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === 'string' || req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(typeof sid === 'string' ? 404 : 400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'No such session' }, id: null }));
        return;
      }
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void this.sessions.set(id, created),
        ...(this.resumable ? { eventStore: new MemoryEventStore(), retryInterval: this.resumable.retryMs } : {}),
      });
      created.onclose = () => {
        if (created.sessionId) this.sessions.delete(created.sessionId);
      };
      await this.buildServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  }
}

/** Every event of every stream in memory, ids `<stream>_<sequence>`; replays the rest of a stream in order. */
class MemoryEventStore implements EventStore {
  private seq = 0;
  private readonly events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${++this.seq}`;
    this.events.push({ id, streamId, message });
    return id;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at < 0) return '';
    const { streamId } = this.events[at];
    for (const e of this.events.slice(at + 1)) if (e.streamId === streamId) await send(e.id, e.message);
    return streamId;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
