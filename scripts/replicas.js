#!/usr/bin/env node
/**
 * `npm run replicas`: the docker-compose topology without Docker, on this
 * machine's PostgreSQL and Redis. Migrates once (`tollgate migrate`), then
 * starts two Tollgate replicas and a small round-robin reverse proxy in front:
 *
 *   proxy     http://127.0.0.1:3000   (PORT)          → adds X-Tollgate-Replica: a|b
 *   replica a http://127.0.0.1:3001   (REPLICA_PORTS)
 *   replica b http://127.0.0.1:3002
 *
 * Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/tollgate,
 * created when missing), REDIS_URL (default redis://127.0.0.1:6379), DATA_DIR
 * (default ./.tollgate/replicas: the shared development JWT secret and key
 * pepper live there, so keys and tokens work on both replicas); anything else
 * (PLANS_FILE, UPSTREAM_ALLOWED_HOSTS, …) is passed to both replicas.
 * Ctrl-C stops everything.
 */
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const http = require('node:http');
const { join, resolve } = require('node:path');

const root = join(__dirname, '..');
const env = {
  ...process.env,
  DATABASE_URL: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/tollgate',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  DATA_DIR: resolve(process.env.DATA_DIR || join(root, '.tollgate', 'replicas')),
  // Each replica would otherwise start its own demo upstream.
  DEMO: 'false',
  MIGRATIONS_RUN: 'false',
  TRUST_PROXY: 'true',
};
const proxyPort = Number(process.env.PORT || 3000);
const replicaPorts = (process.env.REPLICA_PORTS || '3001,3002').split(',').map(Number);
if (replicaPorts.length !== 2 || replicaPorts.some((p) => !Number.isInteger(p) || p <= 0)) fail('REPLICA_PORTS must be two ports, e.g. 3001,3002');

const children = [];
let stopping = false;

/** The app from its sources (ts-node); REPLICAS_USE_DIST=true runs dist/ instead (after `npm run build`). */
function appCommand() {
  const compiled = join(root, 'dist', 'src', 'main.js');
  if (existsSync(compiled) && process.env.REPLICAS_USE_DIST === 'true') return [compiled];
  return ['-r', 'ts-node/register/transpile-only', join(root, 'src', 'main.ts')];
}

async function ensureDatabase() {
  const { Client } = require('pg');
  const url = new URL(env.DATABASE_URL);
  const name = decodeURIComponent(url.pathname.slice(1));
  const admin = new URL(env.DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  try {
    await client.connect();
  } catch (err) {
    fail(`Cannot reach PostgreSQL at ${admin.host} (${err.message}). Start it, or set DATABASE_URL.`);
  }
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      if (!/^[A-Za-z0-9_]+$/.test(name)) fail(`Database ${name} does not exist; create it first.`);
      await client.query(`CREATE DATABASE ${name}`);
      log('setup', `created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

function migrate() {
  // Also creates the development secrets in DATA_DIR once, before two replicas race to do it.
  const r = spawnSync(process.execPath, [join(root, 'bin', 'tollgate.js'), 'migrate'], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) fail('`tollgate migrate` failed');
}

function startReplica(name, port) {
  const child = spawn(process.execPath, appCommand(), {
    cwd: root,
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: process.env.PUBLIC_URL || `http://127.0.0.1:${proxyPort}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = (stream, out) => {
    let rest = '';
    stream.on('data', (d) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop();
      for (const line of lines) out.write(`[${name}] ${line}\n`);
    });
  };
  prefix(child.stdout, process.stdout);
  prefix(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      log(name, `exited (${signal || code}); stopping`);
      void stop(1);
    }
  });
  children.push(child);
  return { name, port, child };
}

async function waitReady(replica) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (replica.child.exitCode !== null) fail(`replica ${replica.name} exited during start`);
    try {
      const res = await fetch(`http://127.0.0.1:${replica.port}/health/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  fail(`replica ${replica.name} was not ready within 120 s`);
}

/** Round-robin; a replica that refuses the connection is skipped for the next request. */
function startProxy(replicas) {
  let next = 0;
  const server = http.createServer((req, res) => {
    const target = replicas[next++ % replicas.length];
    const headers = { ...req.headers, 'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ') };
    const upstream = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode, { ...up.headers, 'x-tollgate-replica': target.name });
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'Bad gateway', status: 502, detail: `replica ${target.name}: ${err.message}` }));
      } else res.destroy();
    });
    req.pipe(upstream);
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(proxyPort, '127.0.0.1', () => resolvePromise(server));
  });
}

let proxy = null;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  proxy?.close();
  await Promise.all(
    children.map(
      (c) =>
        new Promise((r) => {
          if (c.exitCode !== null) return r();
          c.once('exit', r);
          c.kill('SIGTERM');
          setTimeout(() => c.exitCode === null && c.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
  process.exit(code);
}

function log(who, message) {
  process.stdout.write(`[${who}] ${message}\n`);
}

function fail(message) {
  process.stderr.write(`replicas: ${message}\n`);
  if (children.length) void stop(1);
  else process.exit(1);
}

async function main() {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  log('setup', `PostgreSQL ${new URL(env.DATABASE_URL).host}${new URL(env.DATABASE_URL).pathname}, Redis ${new URL(env.REDIS_URL).host}, DATA_DIR ${env.DATA_DIR}`);
  await ensureDatabase();
  migrate();
  const replicas = [startReplica('a', replicaPorts[0]), startReplica('b', replicaPorts[1])];
  await Promise.all(replicas.map(waitReady));
  proxy = await startProxy(replicas);
  process.stdout.write(
    [
      '',
      'Two Tollgate replicas share PostgreSQL and Redis:',
      `  replica a  http://127.0.0.1:${replicaPorts[0]}`,
      `  replica b  http://127.0.0.1:${replicaPorts[1]}`,
      `  proxy      http://127.0.0.1:${proxyPort}   (round-robin; see the X-Tollgate-Replica response header)`,
      '',
      'An admin token and a key (same DATA_DIR, so both replicas accept them):',
      '',
      `  export DATA_DIR=${env.DATA_DIR} DATABASE_URL=${env.DATABASE_URL} REDIS_URL=${env.REDIS_URL}`,
      '  export TOLLGATE_TOKEN=$(npx tollgate --json token dev | node -pe "JSON.parse(require(\'fs\').readFileSync(0)).token")',
      '  npx tollgate key create --tenant demo --name replicas-key',
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((err) => fail(err.stack || String(err)));
