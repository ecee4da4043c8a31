/**
 * A stdio MCP server for tests of stdio upstreams (UPSTREAMS_FILE), written
 * with the official SDK's low-level `Server`, so that its tools/list and
 * errors are exactly what the test needs:
 * - echo ({message}): text; listed with icons, execution and _meta (one key
 *   the MCP specification reserves, one vendor key);
 * - pid: this process's id (tells a restarted process from the same one);
 * - huge ({bytes}): a text of `bytes` characters;
 * - rpc_error ({code, message}): answers a JSON-RPC error with that code and message;
 * - slow ({ms}): answers after `ms` milliseconds.
 * Exits when its stdin ends (the client closed it).
 * Run: node test/support/stdio-upstream.js
 */
const { Server } = require('@modelcontextprotocol/sdk/server/index.js');
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
const { CallToolRequestSchema, ListToolsRequestSchema, McpError } = require('@modelcontextprotocol/sdk/types.js');

const object = (properties = {}) => ({ type: 'object', properties });

const server = new Server({ name: 'stdio-fixture', version: '1.0.0' }, { capabilities: { tools: {} } });

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    {
      name: 'echo',
      description: 'Echoes the message back.',
      inputSchema: object({ message: { type: 'string' } }),
      icons: [{ src: 'https://example.com/echo.png', mimeType: 'image/png', sizes: ['48x48'] }],
      execution: { taskSupport: 'forbidden' },
      _meta: { 'example.com/owner': 'team-a', 'io.modelcontextprotocol/ui': { resourceUri: 'ui://echo' } },
    },
    { name: 'pid', description: 'This process id.', inputSchema: object() },
    { name: 'huge', description: 'A text of `bytes` characters.', inputSchema: object({ bytes: { type: 'integer' } }) },
    { name: 'rpc_error', description: 'A JSON-RPC error with that code and message.', inputSchema: object({ code: { type: 'integer' }, message: { type: 'string' } }) },
    { name: 'slow', description: 'Answers after `ms` milliseconds.', inputSchema: object({ ms: { type: 'integer' } }) },
  ],
}));

const text = (t) => ({ content: [{ type: 'text', text: t }] });

server.setRequestHandler(CallToolRequestSchema, async (req) => {
  const args = req.params.arguments ?? {};
  switch (req.params.name) {
    case 'echo':
      return text(`echo: ${args.message}`);
    case 'pid':
      return text(String(process.pid));
    case 'huge':
      return text('x'.repeat(args.bytes));
    case 'rpc_error': {
      // The wire message is exactly `args.message` (McpError would prefix it).
      const err = new Error(args.message);
      err.code = args.code;
      throw err;
    }
    case 'slow':
      await new Promise((resolve) => setTimeout(resolve, args.ms));
      return text(`slept ${args.ms} ms`);
    default:
      throw new McpError(-32602, `Unknown tool: ${req.params.name}`);
  }
});

process.stdin.on('end', () => process.exit(0));
void server.connect(new StdioServerTransport());
