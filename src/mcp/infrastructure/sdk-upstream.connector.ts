import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
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
}

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
    return this.withClient(upstream, async (client) => {
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
    if (pooled) await pooled.client.then((c) => c.close()).catch(() => undefined);
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.pool.keys()].map((id) => this.forget(id)));
  }

  private async withClient<T>(upstream: Upstream, work: (client: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.session(upstream);
    } catch (err) {
      this.pool.delete(upstream.id);
      throw this.translate(upstream, err);
    }
    try {
      return await work(client);
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
    const client = (async () => {
      const c = new Client(CLIENT_INFO, { capabilities: {} });
      const transport = upstream.stdio
        ? new StdioClientTransport({
            command: upstream.stdio.command,
            args: upstream.stdio.args,
            env: { ...getDefaultEnvironment(), ...upstream.stdio.env },
            stderr: 'ignore',
          })
        : new StreamableHTTPClientTransport(new URL(upstream.url), { requestInit: { headers: upstream.headers } });
      c.onerror = (e) => this.logger.debug(`upstream ${upstream.name}: ${e.message}`);
      await c.connect(transport, { timeout: upstream.timeoutMs });
      return c;
    })();
    this.pool.set(upstream.id, { fingerprint, client });
    return client;
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
