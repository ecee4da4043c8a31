import { createServer, IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolResult, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** How the fake answers HTTP: normally, never (connection accepted, no reply), or with broken JSON. */
export type FakeUpstreamMode = 'normal' | 'hang' | 'malformed';

/** A 1×1 transparent PNG. */
export const FAKE_IMAGE_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

export const BOOM_MESSAGE = 'boom: the widget id must be a positive integer';

/**
 * An in-process upstream MCP server for fault tests: the official SDK
 * `McpServer` behind a stateless `StreamableHTTPServerTransport` on a
 * node:http server bound to 127.0.0.1 (free port, kept across restarts).
 *
 * Tools: echo, slow ({ms}), fail (isError result), boom (JSON-RPC error
 * -32602), image (image content + structuredContent with an outputSchema).
 * `calls` counts tools/call requests that reached the HTTP server, per tool;
 * `methods` counts every JSON-RPC method (e.g. `initialize`).
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
    await closed;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Builds the MCP server the way an upstream author would, with McpServer.registerTool. */
  private buildServer(): McpServer {
    const mcp = new McpServer({ name: 'fake-upstream', version: '1.0.0' });
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
      async ({ ms }): Promise<CallToolResult> => {
        await this.sleep(ms);
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
    // A real JSON-RPC error from tools/call (what e.g. a low-level Server does on bad params).
    const handlers = (mcp.server as unknown as { _requestHandlers: Map<string, (req: any, extra: any) => Promise<unknown>> })._requestHandlers;
    const original = handlers.get('tools/call');
    if (!original) throw new Error('fake upstream: McpServer did not install a tools/call handler');
    handlers.set('tools/call', async (req, extra) => {
      if (req?.params?.name === 'boom') throw new McpError(ErrorCode.InvalidParams, BOOM_MESSAGE, { field: 'id' });
      return original(req, extra);
    });
    return mcp;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeps.add(wake);
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
    const mcp = this.buildServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
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
