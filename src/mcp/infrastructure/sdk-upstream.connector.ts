import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Agent as HttpAgent, request as httpRequest, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Upstream, UpstreamTool } from '../domain/upstream';
import { UpstreamFailureError, UpstreamProtocolError, UpstreamTimeoutError } from '../domain/mcp.errors';
import { UpstreamConnector } from '../domain/upstream.repository';

interface Pooled {
  fingerprint: string;
  client: Promise<Client>;
  /** Set once the session is up, for HTTP upstreams that answered `initialize` with application/json. */
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

const CLIENT_INFO = { name: 'tollgate', version: '0.1.0' };

/**
 * Speaks MCP to upstreams with the official SDK client. One initialized
 * session per upstream is kept open and shared by every caller (requests are
 * multiplexed over it), so a tool call never pays for a new handshake. A
 * session that fails is dropped and re-established on the next call.
 */
@Injectable()
export class SdkUpstreamConnector extends UpstreamConnector implements OnModuleDestroy {
  private readonly logger = new Logger(SdkUpstreamConnector.name);
  private readonly pool = new Map<string, Pooled>();

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

  async callTool(upstream: Upstream, tool: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.withClient(upstream, async (client, direct) => {
      if (direct) return this.directCall(upstream, direct, tool, args);
      const result = await client.request(
        { method: 'tools/call', params: { name: tool, arguments: args } },
        // The schema keeps unknown members: the result is forwarded as the upstream produced it.
        CallToolResultSchema,
        { timeout: upstream.timeoutMs },
      );
      return result as Record<string, unknown>;
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
      const transport = upstream.stdio
        ? new StdioClientTransport({
            command: upstream.stdio.command,
            args: upstream.stdio.args,
            env: { ...getDefaultEnvironment(), ...upstream.stdio.env },
            stderr: 'ignore',
          })
        : new StreamableHTTPClientTransport(new URL(upstream.url), {
            requestInit: { headers: upstream.headers },
            // Observes the answer to `initialize`: an upstream that answers JSON gets direct tools/calls.
            fetch: async (url, init) => {
              const res = await fetch(url, init);
              if (init?.method === 'POST' && initContentType === undefined) initContentType = res.headers.get('content-type') ?? '';
              return limitBody(res);
            },
          });
      let initContentType: string | undefined;
      c.onerror = (e) => this.logger.debug(`upstream ${upstream.name}: ${e.message}`);
      await c.connect(transport, { timeout: upstream.timeoutMs });
      if (transport instanceof StreamableHTTPClientTransport && this.pool.get(upstream.id) === entry && initContentType?.startsWith('application/json')) {
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
   * upstreams that answer JSON (enableJsonResponse). This hand-writes what the
   * SDK client does for that case, because its path (WHATWG fetch, Web
   * streams, Request/Response objects) cost Tollgate more CPU than the rest
   * of a call (bench/README.md). Fidelity with the SDK path:
   * - same request: method, params, session id, negotiated protocol version,
   *   the upstream's configured headers;
   * - same result: validated and shaped by the SDK's own CallToolResultSchema;
   * - same errors: a JSON-RPC error becomes the SDK's McpError, HTTP and
   *   network failures the SDK's messages, and translate() maps them all;
   * - timeout: the SDK's RequestTimeout, after which notifications/cancelled
   *   is sent, as the SDK client does.
   * Anything the direct path does not cover (an SSE answer) ends the direct
   * mode for this session; the SDK client handles that upstream from then on.
   */
  private async directCall(upstream: Upstream, direct: DirectSession, tool: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = nextDirectId++;
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } });
    let res: { status: number; contentType: string; text: string };
    try {
      res = await this.post(direct, body, upstream.timeoutMs);
    } catch (err) {
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        const cancel = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(err) } });
        this.post(direct, cancel, upstream.timeoutMs).catch(() => undefined);
      }
      throw err;
    }
    if (res.status < 200 || res.status >= 300) {
      throw new Error(`Streamable HTTP error: Error POSTing to endpoint: ${res.text}`);
    }
    let messages: unknown;
    if (res.contentType.startsWith('application/json')) {
      messages = JSON.parse(res.text);
    } else if (res.contentType.startsWith('text/event-stream')) {
      // Not a JSON upstream after all: read this (complete) stream, then leave the session to the SDK.
      const pooled = this.pool.get(upstream.id);
      if (pooled) pooled.direct = undefined;
      messages = parseSseMessages(res.text);
    } else {
      throw new Error(`Unexpected content type: ${res.contentType}`);
    }
    const response = (Array.isArray(messages) ? messages : [messages]).find(
      (m): m is { id: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } } =>
        typeof m === 'object' && m !== null && (m as { id?: unknown }).id === id && ('result' in m || 'error' in m),
    );
    if (!response) throw new Error('The upstream answered without a JSON-RPC response to the call');
    if (response.error) throw new McpError(response.error.code, response.error.message, response.error.data);
    const parsed = CallToolResultSchema.safeParse(response.result);
    if (!parsed.success) throw parsed.error;
    return parsed.data as Record<string, unknown>;
  }

  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' });

  /** One POST, body read in full; rejects with the SDK's RequestTimeout McpError after `timeoutMs`. */
  private post(direct: DirectSession, body: string, timeoutMs: number): Promise<{ status: number; contentType: string; text: string }> {
    return new Promise((resolve, reject) => {
      const https = direct.url.protocol === 'https:';
      const req = (https ? httpsRequest : httpRequest)(direct.url, {
        method: 'POST',
        agent: https ? this.httpsAgent : this.httpAgent,
        headers: { ...direct.headers, 'content-length': Buffer.byteLength(body) },
      });
      const settle = () => {
        clearTimeout(timer);
        direct.inFlight.delete(abort);
      };
      const fail = (err: Error) => {
        settle();
        req.destroy();
        reject(err);
      };
      // The errors the SDK client gives for the same events: its request timeout, its closed connection.
      const timer = setTimeout(() => fail(new McpError(ErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs })), timeoutMs);
      const abort = () => fail(new McpError(ErrorCode.ConnectionClosed, 'Connection closed'));
      direct.inFlight.add(abort);
      req.once('error', (err: NodeJS.ErrnoException) => {
        settle();
        // The SDK's fetch reports network failures as `fetch failed` with the cause's code.
        reject(Object.assign(new Error('fetch failed'), { cause: err }));
      });
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received > MAX_UPSTREAM_RESPONSE_BYTES) fail(tooLarge());
          else chunks.push(c);
        });
        res.once('error', (err) => {
          settle();
          reject(Object.assign(new Error('fetch failed'), { cause: err }));
        });
        res.once('end', () => {
          settle();
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(body);
    });
  }

  private translate(upstream: Upstream, err: unknown): Error {
    if (err instanceof UpstreamFailureError || err instanceof UpstreamTimeoutError || err instanceof UpstreamProtocolError) {
      return err;
    }
    if (err instanceof McpError) {
      if (err.code === ErrorCode.RequestTimeout) return new UpstreamTimeoutError(upstream.name, upstream.timeoutMs);
      if (err.code === ErrorCode.ConnectionClosed) return new UpstreamFailureError(upstream.name, 'connection closed');
      return new UpstreamProtocolError(upstream.name, err.code, err.message.replace(/^MCP error -?\d+: /, ''), err.data);
    }
    const e = err as { name?: string; message?: string; cause?: { code?: string } };
    const reason = e?.cause?.code ?? e?.message ?? 'unreachable';
    return new UpstreamFailureError(upstream.name, String(reason).slice(0, 200));
  }
}

/** The JSON-RPC messages in a complete SSE body (`data:` lines of each event). */
function parseSseMessages(text: string): unknown[] {
  const out: unknown[] = [];
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data) continue;
    try {
      out.push(JSON.parse(data));
    } catch {
      // not a JSON-RPC message (e.g. a priming event)
    }
  }
  return out;
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
