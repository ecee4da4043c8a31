'use strict';
// Registers the fixture server in a running Tollgate and creates an API key for it.
// Prints the API key (the one-time token) on stdout.
//
// Usage: node setup.js <tollgate-base-url> <upstream-mcp-url>
// Env:   JWT_SECRET (the secret Tollgate runs with; admin HS256 token, claims as in
//        test/support/factories.ts managementToken), SERVER_NAME (default "conf").

const crypto = require('node:crypto');
const { Buffer } = require('node:buffer');

const [base, upstreamUrl] = process.argv.slice(2);
const secret = process.env.JWT_SECRET;
const serverName = process.env.SERVER_NAME || 'conf';
if (!base || !upstreamUrl || !secret) {
  console.error('usage: JWT_SECRET=... node setup.js <tollgate-base-url> <upstream-mcp-url>');
  process.exit(2);
}

function adminToken() {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub: 'user-admin', tenant_id: 'conformance', roles: ['admin'], iat: now, exp: now + 3600 });
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function post(path, payload, token) {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} -> HTTP ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

(async () => {
  const token = adminToken();
  const server = await post('/api/v1/mcp/servers', { name: serverName, url: upstreamUrl }, token);
  console.error(`registered upstream "${serverName}" (${server.id ?? '?'}) -> ${upstreamUrl}`);
  const key = await post('/api/v1/api-keys', { name: 'conformance', permission_scope: { mcp_tool_ids: ['*'] } }, token);
  if (!key.token) throw new Error('API key response has no token');
  console.log(key.token);
})().catch((err) => {
  console.error(`setup failed: ${err.message}`);
  process.exit(1);
});
