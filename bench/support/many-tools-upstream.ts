/**
 * A fake upstream MCP server for S4: N tools (default 1,000) named
 * `tool_0000` … `tool_0999`, each with a small input schema, plus `echo`.
 * Streamable HTTP, stateful (one session per client, like server-everything),
 * JSON responses. The tool list is built once: the baseline measures the SDK
 * server's protocol cost, not per-request schema conversion.
 *
 *   node -r ts-node/register/transpile-only bench/support/many-tools-upstream.ts   (PORT, TOOLS)
 */
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';

const PORT = Number(process.env.PORT ?? 0);
const COUNT = Number(process.env.TOOLS ?? 1000);
const validator = new AjvJsonSchemaValidator();

const tools = Array.from({ length: COUNT }, (_, i) => ({
  name: `tool_${String(i).padStart(4, '0')}`,
  description: `Synthetic tool number ${i} for the Tollgate tools/list benchmark.`,
  inputSchema: {
    type: 'object' as const,
    properties: { message: { type: 'string', description: 'Text to echo back' }, count: { type: 'integer', minimum: 0 } },
    required: ['message'],
  },
}));
tools.push({ name: 'echo', description: 'Echoes back the input', inputSchema: { type: 'object', properties: { message: { type: 'string', description: 'Message to echo' }, count: { type: 'integer', minimum: 0 } }, required: ['message'] } });

function newServer(): Server {
  const server = new Server({ name: 'many-tools', version: '0.0.1' }, { capabilities: { tools: {} }, jsonSchemaValidator: validator });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => ({
    content: [{ type: 'text', text: `Echo: ${String((req.params.arguments ?? {}).message ?? '')}` }],
  }));
  return server;
}

const sessions = new Map<string, StreamableHTTPServerTransport>();

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
      } catch (e) {
        reject(e as Error);
      }
    });
    req.on('error', reject);
  });
}

const http = createServer((req, res) => {
  void (async () => {
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? sessions.get(sid) : undefined;
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if (!transport) {
      if (sid !== undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id) => void sessions.set(id, t),
      });
      t.onclose = () => {
        if (t.sessionId) sessions.delete(t.sessionId);
      };
      await newServer().connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  })().catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500).end(String(err.message));
  });
});

http.listen(PORT, '127.0.0.1', () => {
  const a = http.address();
  process.stdout.write(`many-tools upstream (${tools.length} tools) on http://127.0.0.1:${typeof a === 'object' && a ? a.port : PORT}/mcp\n`);
});
process.on('SIGTERM', () => http.close(() => process.exit(0)));
