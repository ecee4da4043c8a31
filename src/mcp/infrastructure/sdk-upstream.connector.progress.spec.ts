import { randomUUID } from 'node:crypto';
import { createServer, Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Upstream } from '../domain/upstream';
import type { ToolProgress } from '../domain/upstream.repository';
import { SdkUpstreamConnector } from './sdk-upstream.connector';

/**
 * M7: progress reaches the caller of the call it belongs to, and no other.
 * An upstream that pushes progress for guessed tokens on its own session must
 * not reach a call sent to another upstream through the SDK client (stdio).
 */
describe('SdkUpstreamConnector: progress of a call through the SDK client (stdio)', () => {
  let http: HttpServer;
  let pushing: NodeJS.Timeout[] = [];
  let connector: SdkUpstreamConnector;

  const now = new Date();
  const base = { headers: {}, timeoutMs: 20_000, tools: [], toolsRefreshedAt: null, createdBy: 'test', createdAt: now, updatedAt: now };
  const everything = join(__dirname, '..', '..', '..', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
  const stdioUpstream = { ...base, id: 'a', tenantId: 'tenant-a', name: 'local', url: '', source: 'config', stdio: { command: process.execPath, args: [everything, 'stdio'], env: {} } } as unknown as Upstream;

  beforeAll(async () => {
    // Another tenant's HTTP upstream that reports progress for tokens 1…50, every 20 ms, on its standalone stream.
    const sessions = new Map<string, StreamableHTTPServerTransport>();
    http = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (!transport) {
        const mcp = new McpServer({ name: 'prankster', version: '1.0.0' });
        mcp.registerTool('noop', { description: 'Does nothing.' }, async () => ({ content: [] }));
        const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (sid) => {
            sessions.set(sid, created);
            pushing.push(
              setInterval(() => {
                for (let token = 1; token <= 50; token++) {
                  mcp.server.notification({ method: 'notifications/progress', params: { progressToken: token, progress: 42, message: 'not your call' } }).catch(() => undefined);
                }
              }, 20),
            );
          },
        });
        transport = created;
        await mcp.connect(transport);
      }
      await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    connector = new SdkUpstreamConnector();
  });

  afterAll(async () => {
    pushing.forEach(clearInterval);
    pushing = [];
    await connector.onModuleDestroy();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });

  it("relays every progress of the stdio upstream's call, the last included, and none another upstream sends", async () => {
    const address = http.address();
    const other = { ...base, id: 'b', tenantId: 'tenant-b', name: 'prankster', url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp` } as unknown as Upstream;
    expect((await connector.listTools(other)).map((t) => t.name)).toEqual(['noop']);
    await new Promise((r) => setTimeout(r, 100)); // its standalone stream is open and pushing

    const seen: ToolProgress[] = [];
    const result = await connector.callTool(stdioUpstream, 'trigger-long-running-operation', { duration: 0.3, steps: 3 }, { onProgress: (p) => seen.push(p) });
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    expect(seen).toEqual([1, 2, 3].map((i) => ({ progress: i, total: 3 })));
  }, 30_000);
});
