'use strict';
// Small transparent proxy in front of Tollgate's /mcp for the MCP conformance suite
// (scripts/conformance/run.sh). The suite cannot send credentials and calls tools by
// their upstream names, so this proxy
// (a) adds X-API-Key; (b) hides the "conf__" tool prefix:
//   request  tools/call params.name X        -> conf__X
//   response tools/list result.tools[].name conf__X -> X  (JSON bodies and SSE data: lines)
// Everything else (status, headers, GET/DELETE, SSE streaming) passes through.
//
// Env: TG_API_KEY (required), PROXY_PORT (4712), TARGET_HOST (127.0.0.1),
//      TARGET_PORT (4711), TOOL_PREFIX (conf__), PROXY_VERBOSE=1 to log traffic.
const http = require('node:http');
const { Buffer } = require('node:buffer');

const LISTEN_PORT = Number(process.env.PROXY_PORT || 4712);
const TARGET_HOST = process.env.TARGET_HOST || '127.0.0.1';
const TARGET_PORT = Number(process.env.TARGET_PORT || 4711);
const API_KEY = process.env.TG_API_KEY;
const PREFIX = process.env.TOOL_PREFIX || 'conf__';
const VERBOSE = process.env.PROXY_VERBOSE === '1';
if (!API_KEY) throw new Error('TG_API_KEY is required');

const log = (...a) => { if (VERBOSE) console.log(new Date().toISOString(), ...a); };

function rewriteRequestMessage(m) {
  if (m && typeof m === 'object' && m.method === 'tools/call' && m.params && typeof m.params.name === 'string') {
    m.params.name = PREFIX + m.params.name;
    return true;
  }
  return false;
}

function rewriteResponseMessage(m) {
  let changed = false;
  if (m && typeof m === 'object' && m.result && Array.isArray(m.result.tools)) {
    for (const t of m.result.tools) {
      if (t && typeof t.name === 'string' && t.name.startsWith(PREFIX)) {
        t.name = t.name.slice(PREFIX.length);
        changed = true;
      }
    }
  }
  return changed;
}

function rewriteJsonText(text, fn) {
  let parsed;
  try { parsed = JSON.parse(text); } catch { return text; }
  const msgs = Array.isArray(parsed) ? parsed : [parsed];
  let changed = false;
  for (const m of msgs) changed = fn(m) || changed;
  return changed ? JSON.stringify(parsed) : text;
}

function copyHeaders(h, drop) {
  const out = {};
  for (const [k, v] of Object.entries(h)) if (!drop.includes(k.toLowerCase())) out[k] = v;
  return out;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    const ct = String(req.headers['content-type'] || '');
    if (body.length && ct.includes('json')) {
      const t = body.toString('utf8');
      const nt = rewriteJsonText(t, rewriteRequestMessage);
      if (nt !== t) body = Buffer.from(nt, 'utf8');
    }
    const headers = copyHeaders(req.headers, ['x-api-key', 'content-length', 'transfer-encoding']);
    headers['x-api-key'] = API_KEY;
    if (body.length || req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      headers['content-length'] = String(body.length);
    }
    log('>>', req.method, req.url, body.length ? body.toString('utf8').slice(0, 300) : '');

    const up = http.request(
      { host: TARGET_HOST, port: TARGET_PORT, method: req.method, path: req.url, headers },
      (ur) => {
        const uct = String(ur.headers['content-type'] || '');
        log('<<', ur.statusCode, uct);
        if (uct.includes('text/event-stream')) {
          // Stream SSE line by line, rewriting data: lines that are tools/list results.
          res.writeHead(ur.statusCode, ur.statusMessage, copyHeaders(ur.headers, ['content-length', 'transfer-encoding']));
          if (typeof res.flushHeaders === 'function') res.flushHeaders();
          let buf = '';
          ur.setEncoding('utf8');
          ur.on('data', (d) => {
            buf += d;
            let out = '';
            let idx;
            while ((idx = buf.indexOf('\n')) >= 0) {
              let line = buf.slice(0, idx + 1);
              buf = buf.slice(idx + 1);
              if (line.startsWith('data:')) {
                const eol = line.endsWith('\r\n') ? '\r\n' : '\n';
                const raw = line.slice(5, line.length - eol.length);
                const lead = raw.startsWith(' ') ? ' ' : '';
                const payload = raw.slice(lead.length);
                const np = rewriteJsonText(payload, rewriteResponseMessage);
                if (np !== payload) line = 'data:' + lead + np + eol;
              }
              out += line;
            }
            if (out) { log('<< sse', out.slice(0, 300).replace(/\n/g, '\\n')); res.write(out); }
          });
          ur.on('end', () => { if (buf) res.write(buf); res.end(); });
          ur.on('error', () => res.destroy());
        } else if (uct.includes('json')) {
          const uc = [];
          ur.on('data', (d) => uc.push(d));
          ur.on('end', () => {
            let b = Buffer.concat(uc);
            const t = b.toString('utf8');
            const nt = rewriteJsonText(t, rewriteResponseMessage);
            if (nt !== t) b = Buffer.from(nt, 'utf8');
            const h = copyHeaders(ur.headers, ['content-length', 'transfer-encoding']);
            h['content-length'] = String(b.length);
            log('<< json', t.slice(0, 300));
            res.writeHead(ur.statusCode, ur.statusMessage, h);
            res.end(b);
          });
          ur.on('error', () => res.destroy());
        } else {
          res.writeHead(ur.statusCode, ur.statusMessage, ur.headers);
          ur.pipe(res);
        }
      }
    );
    up.on('error', (e) => {
      log('upstream error', e.message);
      if (!res.headersSent) { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('proxy: ' + e.message); }
      else res.destroy();
    });
    // Client went away before the answer: stop the upstream request too.
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    up.end(body.length ? body : undefined);
  });
});

server.listen(LISTEN_PORT, '127.0.0.1', () => {
  console.log(`proxy on http://127.0.0.1:${LISTEN_PORT} -> http://${TARGET_HOST}:${TARGET_PORT}`);
});
