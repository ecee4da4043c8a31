import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ENV_NAMES } from '../../src/config/env.validation';

/**
 * The newcomer's path (README "Run"), as a test: start Tollgate the way
 * `npm start` does, with no configuration at all (no DATABASE_URL, no
 * secrets), copy the printed token and curl command, and create a key.
 *
 * The child gets a clean environment: every Tollgate variable of this jest
 * process (DATABASE_URL of the test run, JWT_SECRET, API_KEY_PEPPER,
 * PUBLIC_URL, ... set by test/support/env.ts) is removed, so it really runs
 * on the embedded PostgreSQL with generated secrets.
 */

const ROOT = resolve(__dirname, '..', '..');
const BANNER_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 15_000;

interface Tollgate {
  child: ChildProcess;
  port: number;
  dataDir: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Tollgate[] = [];
const dirs: string[] = [];

function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-newcomer-'));
  // Embedded PostgreSQL runs as a dedicated OS user when we are root: it must traverse the directory.
  chmodSync(dir, 0o711);
  dirs.push(dir);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** A newcomer's shell: nothing Tollgate reads is set, except what the test chooses. */
function newcomerEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ENV_NAMES) delete env[name];
  for (const name of Object.keys(env)) if (name.startsWith('TEST_DATABASE_')) delete env[name];
  return { ...env, ...overrides };
}

async function startTollgate(dataDir: string): Promise<Tollgate> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: ROOT,
    env: newcomerEnv({ DATA_DIR: dataDir, PORT: String(port), NODE_ENV: 'development' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  const t: Tollgate = { child, port, dataDir, stdout: () => out, stderr: () => err, exited };
  started.push(t);
  return t;
}

/** Resolves with stdout once `pattern` appears; rejects if the process exits or the time runs out. */
function waitForOutput(t: Tollgate, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => done(new Error(`no ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    const check = () => {
      if (pattern.test(t.stdout())) done();
    };
    const onExit = (code: number | null) => done(new Error(`Tollgate exited (${code}) before printing ${pattern}`));
    function done(error?: Error) {
      clearTimeout(timer);
      t.child.stdout!.off('data', check);
      t.child.off('exit', onExit);
      if (error) rej(new Error(`${error.message}\n--- stdout ---\n${t.stdout().slice(-4000)}\n--- stderr ---\n${t.stderr().slice(-4000)}`));
      else res(t.stdout());
    }
    t.child.stdout!.on('data', check);
    t.child.once('exit', onExit);
    check();
  });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what} took more than ${ms} ms`)), ms);
    }),
  ]);
}

/** A command as printed: from the first line matching `start`, following `\` continuations. */
function printedCommand(stdout: string, start: RegExp): string {
  const lines = stdout.split('\n');
  const first = lines.findIndex((l) => start.test(l));
  if (first < 0) throw new Error(`no line matching ${start} in:\n${stdout}`);
  const command: string[] = [];
  for (let i = first; i < lines.length; i++) {
    command.push(lines[i].trim());
    if (!lines[i].trimEnd().endsWith('\\')) break;
  }
  return command.join('\n');
}

/** The banner: the token export and the multi-line curl command that creates a key, exactly as shown. */
function parseBanner(stdout: string): { token: string; curl: string; url: string; body: unknown } {
  const token = /^\s*export TOLLGATE_TOKEN=(\S+)\s*$/m.exec(stdout)?.[1];
  if (!token) throw new Error(`no TOLLGATE_TOKEN export in:\n${stdout}`);
  const curl = printedCommand(stdout, /^\s*curl\s.*\/api\/v1\/api-keys/);
  const url = /curl\s.*?(https?:\/\/\S+)/.exec(curl)?.[1];
  const body = /-d\s+'([^']*)'/.exec(curl)?.[1];
  if (!url || body === undefined) throw new Error(`cannot read the URL and body of:\n${curl}`);
  return { token, curl, url, body: JSON.parse(body) };
}

/** Runs a printed command in a shell with the printed exports, as a reader pasting it would; returns body and status. */
function paste(command: string, exports: Record<string, string>): { status: string; body: any; stderr: string } {
  // -w only appends the status line; the command itself is the one printed.
  const r = spawnSync('sh', ['-c', `${command} -w '\\n%{http_code}'`], {
    env: { ...process.env, ...exports },
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (r.error) throw r.error;
  const lines = r.stdout.trimEnd().split('\n');
  const status = lines.pop() ?? '';
  let body: unknown = lines.join('\n');
  try {
    body = JSON.parse(lines.join('\n'));
  } catch {
    // leave the text for the failure message
  }
  return { status, body, stderr: r.stderr };
}

async function stop(t: Tollgate): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill('SIGTERM');
  return within(t.exited, EXIT_TIMEOUT_MS, 'shutdown after SIGTERM');
}

afterAll(async () => {
  for (const t of started) {
    if (t.child.exitCode === null && t.child.signalCode === null) {
      t.child.kill('SIGTERM');
      await within(t.exited, EXIT_TIMEOUT_MS, 'cleanup').catch(() => t.child.kill('SIGKILL'));
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('newcomer path: `npm start` with no configuration', () => {
  it('starts on the embedded PostgreSQL, the printed curl creates a key, SIGTERM stops everything', async () => {
    const dataDir = freshDataDir();
    const t = await startTollgate(dataDir);
    // The whole banner: admin token + create-key curl, then the demo agent key + REST-mirror curl.
    const stdout = await waitForOutput(t, /export TOLLGATE_TOKEN=\S+[\s\S]*curl -s \S+\/api\/v1\/mcp\/tools[^\n]*\n/, BANNER_TIMEOUT_MS);
    const banner = parseBanner(stdout);
    expect(banner.url).toBe(`http://localhost:${t.port}/api/v1/api-keys`);

    // Paste the printed export and command into a shell, as the README says.
    const pasted = paste(banner.curl, { TOLLGATE_TOKEN: banner.token });
    expect({ status: pasted.status, stderr: pasted.stderr }).toEqual({ status: '201', stderr: '' });
    const created = pasted.body;
    expect(created.token).toMatch(/^tg_live_[0-9A-Za-z]{38}$/);
    expect(created.name).toBe((banner.body as { name: string }).name);
    expect(created.tenant_id).toBe('demo');

    // The same token verifies, and the service is ready.
    const verify = await fetch(`http://127.0.0.1:${t.port}/api/v1/keys/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${banner.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key: created.token, resource: { type: 'mcp_tool', id: 'anything' } }),
    });
    expect(verify.status).toBe(200);
    expect(await verify.json()).toMatchObject({ valid: true, code: 'valid', key_id: created.id, matched_rule: 'mcp_tool_ids:*' });

    // The demo the banner prints next: a real upstream (server-everything) behind Tollgate, reached with the demo key.
    const demoKey = /^\s*export TOLLGATE_KEY=(\S+)\s*$/m.exec(stdout)?.[1];
    expect(demoKey).toMatch(/^tg_live_/);
    const tools = paste(printedCommand(stdout, /^\s*curl\s.*\/api\/v1\/mcp\/tools/), { TOLLGATE_KEY: demoKey! });
    expect(tools.status).toBe('200');
    expect(tools.body.data.length).toBeGreaterThan(0);
    for (const tool of tools.body.data) expect(tool.name).toMatch(/^everything__/);

    const ready = await fetch(`http://127.0.0.1:${t.port}/health/ready`);
    expect(ready.status).toBe(200);

    // Generated secrets stay under DATA_DIR (a restart keeps tokens and keys valid).
    expect(existsSync(join(dataDir, 'dev-jwt-secret'))).toBe(true);
    expect(existsSync(join(dataDir, 'api-key-pepper'))).toBe(true);
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(true);

    const exit = await stop(t);
    expect(exit).toEqual({ code: 0, signal: null });
    // The embedded PostgreSQL stopped with it: no postmaster left on this data directory.
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
    // And the demo upstream it spawned is gone too.
    const upstream = /runs at (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stdout)?.[1];
    expect(upstream).toBeDefined();
    await expect(fetch(upstream!, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  }, 120_000);

  it('a second Tollgate on the same DATA_DIR refuses to start and names the directory', async () => {
    const dataDir = freshDataDir();
    const first = await startTollgate(dataDir);
    await waitForOutput(first, /export TOLLGATE_TOKEN=\S+/, BANNER_TIMEOUT_MS);

    const second = await startTollgate(dataDir);
    const exit = await within(second.exited, 60_000, 'the second Tollgate');
    expect(exit.code).not.toBe(0);
    expect(second.stderr()).toContain(`Another Tollgate process is using the embedded database in ${dataDir}`);
    expect(second.stdout()).not.toContain('TOLLGATE_TOKEN');

    // The first one is unharmed.
    const live = await fetch(`http://127.0.0.1:${first.port}/health/ready`);
    expect(live.status).toBe(200);
    await stop(first);
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
  }, 120_000);
});
