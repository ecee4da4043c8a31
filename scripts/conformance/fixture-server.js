'use strict';
// Minimal MCP server for the conformance check (scripts/conformance/run.sh).
//
// Written for this repository from the scenario descriptions of
// @modelcontextprotocol/conformance@0.1.16 (server suite). It implements the tool
// scenarios, logging/setLevel, ping (built into the SDK) and the SSE scenarios
// (sessions, resumability via an in-memory event store, DNS-rebinding check).
// Resources, prompts and completions are deliberately not implemented: Tollgate
// does not proxy them, so those scenarios fail on both sides of the comparison.
//
// Low-level SDK `Server` + `StreamableHTTPServerTransport` on node:http, one
// Server per session. The SDK is taken from the repository's node_modules.
//
// Usage: PORT=4801 node scripts/conformance/fixture-server.js   (endpoint: /mcp)

const http = require('node:http');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Buffer } = require('node:buffer');

const repoRoot = path.resolve(__dirname, '..', '..');
const sdk = (sub) => require(require.resolve(`@modelcontextprotocol/sdk/${sub}`, { paths: [repoRoot] }));
const { Server } = sdk('server/index.js');
const { StreamableHTTPServerTransport } = sdk('server/streamableHttp.js');
const {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  isInitializeRequest,
} = sdk('types.js');

const PORT = Number(process.env.PORT || 4801);
const HOST = process.env.HOST || '127.0.0.1';

// 1x1 red PNG and a 44-byte silent WAV header with two samples.
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV_TINY = 'UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQQAAACAgICA';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (t) => ({ type: 'text', text: t });
const noArgs = { type: 'object', properties: {} };

// ---- tools ----------------------------------------------------------------

const TOOLS = [
  { name: 'test_simple_text', description: 'Returns simple text', inputSchema: noArgs },
  { name: 'test_image_content', description: 'Returns a PNG image', inputSchema: noArgs },
  { name: 'test_audio_content', description: 'Returns a WAV clip', inputSchema: noArgs },
  { name: 'test_embedded_resource', description: 'Returns an embedded resource', inputSchema: noArgs },
  { name: 'test_multiple_content_types', description: 'Returns text, image and resource', inputSchema: noArgs },
  { name: 'test_tool_with_logging', description: 'Sends 3 log notifications', inputSchema: noArgs },
  { name: 'test_tool_with_progress', description: 'Sends 3 progress notifications', inputSchema: noArgs },
  { name: 'test_error_handling', description: 'Always returns isError: true', inputSchema: noArgs },
  { name: 'test_reconnection', description: 'Closes its SSE stream mid-call (SEP-1699)', inputSchema: noArgs },
  {
    name: 'test_sampling',
    description: 'Asks the client for an LLM completion',
    inputSchema: { type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] },
  },
  {
    name: 'test_elicitation',
    description: 'Asks the client for user input',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
  },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation with defaults (SEP-1034)', inputSchema: noArgs },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with enum variants (SEP-1330)', inputSchema: noArgs },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
      },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const SEP1034_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', default: 'John Doe' },
    age: { type: 'integer', default: 30 },
    score: { type: 'number', default: 95.5 },
    status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean', default: true },
  },
};

const SEP1330_SCHEMA = {
  type: 'object',
  properties: {
    untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
    titledSingle: {
      type: 'string',
      oneOf: [
        { const: 'value1', title: 'First Option' },
        { const: 'value2', title: 'Second Option' },
        { const: 'value3', title: 'Third Option' },
      ],
    },
    legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
    untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
    titledMulti: {
      type: 'array',
      items: {
        anyOf: [
          { const: 'value1', title: 'First Choice' },
          { const: 'value2', title: 'Second Choice' },
          { const: 'value3', title: 'Third Choice' },
        ],
      },
    },
  },
};

// Requests and notifications go through `extra` so that they travel on the
// SSE stream of the tools/call that caused them.
async function callTool(server, name, args, extra) {
  const log = (data) => extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
  const elicit = async (params) => {
    if (!server.getClientCapabilities()?.elicitation) throw new Error('client does not support elicitation');
    return extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema);
  };
  switch (name) {
    case 'test_simple_text':
      return { content: [text('This is a simple text response for testing.')] };
    case 'test_image_content':
      return { content: [{ type: 'image', data: PNG_1X1, mimeType: 'image/png' }] };
    case 'test_audio_content':
      return { content: [{ type: 'audio', data: WAV_TINY, mimeType: 'audio/wav' }] };
    case 'test_embedded_resource':
      return {
        content: [
          {
            type: 'resource',
            resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' },
          },
        ],
      };
    case 'test_multiple_content_types':
      return {
        content: [
          text('Multiple content types test:'),
          { type: 'image', data: PNG_1X1, mimeType: 'image/png' },
          {
            type: 'resource',
            resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' },
          },
        ],
      };
    case 'test_tool_with_logging':
      await log('Tool execution started');
      await sleep(50);
      await log('Tool processing data');
      await sleep(50);
      await log('Tool execution completed');
      return { content: [text('Tool with logging executed successfully')] };
    case 'test_tool_with_progress': {
      const token = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
        }
        if (progress < 100) await sleep(50);
      }
      return { content: [text('Tool with progress executed successfully')] };
    }
    case 'test_error_handling':
      return { isError: true, content: [text('This tool intentionally returns an error for testing')] };
    case 'test_reconnection':
      // Close the POST stream; the client reconnects with Last-Event-ID and gets the result replayed.
      await sleep(100);
      if (extra.closeSSEStream) extra.closeSSEStream();
      await sleep(200);
      return { content: [text('Reconnection test completed')] };
    case 'test_sampling': {
      if (!server.getClientCapabilities()?.sampling) throw new Error('client does not support sampling');
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: { messages: [{ role: 'user', content: text(String(args.prompt ?? '')) }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const reply = result.content && result.content.type === 'text' ? result.content.text : JSON.stringify(result.content);
      return { content: [text(`LLM response: ${reply}`)] };
    }
    case 'test_elicitation': {
      const result = await elicit({
        message: String(args.message ?? ''),
        requestedSchema: {
          type: 'object',
          properties: {
            username: { type: 'string', description: "User's response" },
            email: { type: 'string', description: "User's email address" },
          },
          required: ['username', 'email'],
        },
      });
      return { content: [text(`User response: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)] };
    }
    case 'test_elicitation_sep1034_defaults':
    case 'test_elicitation_sep1330_enums': {
      const requestedSchema = name === 'test_elicitation_sep1034_defaults' ? SEP1034_SCHEMA : SEP1330_SCHEMA;
      const result = await elicit({ message: 'Please review the fields', requestedSchema });
      return { content: [text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)] };
    }
    case 'json_schema_2020_12_tool':
      return { content: [text(`Received: ${JSON.stringify(args)}`)] };
    default:
      return { isError: true, content: [text(`Unknown tool: ${name}`)] };
  }
}

function createServer() {
  const server = new Server({ name: 'tollgate-conformance-fixture', version: '1.0.0' }, { capabilities: { tools: {}, logging: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    try {
      return await callTool(server, req.params.name, req.params.arguments ?? {}, extra);
    } catch (err) {
      return { isError: true, content: [text(`Error: ${err instanceof Error ? err.message : String(err)}`)] };
    }
  });
  return server;
}

// ---- resumability: in-memory event store (SEP-1699) -----------------------

function createEventStore() {
  const events = new Map(); // eventId -> { streamId, message }
  return {
    async storeEvent(streamId, message) {
      const eventId = `${streamId}_${Date.now()}_${randomUUID().slice(0, 8)}`;
      events.set(eventId, { streamId, message });
      return eventId;
    },
    async getStreamIdForEventId(eventId) {
      return events.get(eventId)?.streamId;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const last = events.get(lastEventId);
      if (!last) return '';
      let after = false;
      for (const [eventId, ev] of events) {
        if (eventId === lastEventId) after = true;
        else if (after && ev.streamId === last.streamId) await send(eventId, ev.message);
      }
      return last.streamId;
    },
  };
}

// ---- HTTP -----------------------------------------------------------------

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const hostname = (value) => {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).hostname;
  } catch {
    return '';
  }
};

const transports = new Map(); // session id -> transport

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(raw ? JSON.parse(raw) : undefined);
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}

function jsonRpcError(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

const httpServer = http.createServer(async (req, res) => {
  try {
    // DNS-rebinding protection: only localhost Host/Origin values are accepted.
    const origin = req.headers.origin;
    if (!LOCAL_HOSTS.has(hostname(req.headers.host || '')) || (origin && !LOCAL_HOSTS.has(hostname(origin)))) {
      return jsonRpcError(res, 403, 'Forbidden: non-localhost Host or Origin');
    }
    if (new URL(req.url, 'http://localhost').pathname !== '/mcp') return jsonRpcError(res, 404, 'Not found');

    const sessionId = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    let transport = sessionId ? transports.get(sessionId) : undefined;

    if (!transport) {
      if (sessionId) return jsonRpcError(res, 404, 'Session not found');
      if (req.method !== 'POST' || !isInitializeRequest(body)) return jsonRpcError(res, 400, 'Bad Request: no valid session ID');
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: createEventStore(),
        retryInterval: 500,
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await createServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  } catch (err) {
    console.error('fixture-server error:', err);
    if (!res.headersSent) jsonRpcError(res, 500, 'Internal error');
  }
});

httpServer.listen(PORT, HOST, () => console.log(`fixture MCP server on http://${HOST}:${PORT}/mcp`));
