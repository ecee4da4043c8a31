import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_JWT_SECRET, TEST_PEPPER } from './env';
import { freePort } from './everything-upstream';

const ROOT = join(__dirname, '..', '..');

/** A Tollgate process started by a test (the real `src/main.ts`, as an operator runs it). */
export interface Replica {
  name: string;
  url: string;
  process: ChildProcess;
  output: string[];
}

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/** One HTTP request to a replica, with a management JWT (`token`) or an API key (`key`). */
export async function call(r: Replica, method: string, path: string, opts: { token?: string; key?: string; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.key) headers['x-api-key'] = opts.key;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${r.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: any = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

/** Starts `src/main.ts` on a free port with `env` (only PATH is inherited) and waits for /health/ready. */
export async function startReplica(name: string, env: Record<string, string>, dataDir: string): Promise<Replica> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const replica: Replica = { name, url: `http://127.0.0.1:${port}`, process: child, output: [] };
  child.stdout!.on('data', (d: Buffer) => replica.output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => replica.output.push(d.toString()));
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${replica.url}/health/ready`)).ok) return replica;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  child.kill('SIGKILL');
  throw new Error(`replica ${name} did not become ready:\n${replica.output.join('')}`);
}

/** SIGTERM, then SIGKILL after 10 s. */
export async function stopReplica(r: Replica): Promise<void> {
  if (r.process.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => r.process.once('exit', () => resolve()));
  r.process.kill('SIGTERM');
  const timer = setTimeout(() => r.process.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Two Tollgate processes (A and B) on the test database and REDIS_URL, with
 * `plans` as their PLANS_FILE, data under a fresh temporary directory.
 */
export async function startReplicaPair(label: string, plans: unknown[]): Promise<{ a: Replica; b: Replica; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `tollgate-${label}-`));
  const plansFile = join(dir, 'plans.json');
  writeFileSync(plansFile, JSON.stringify(plans));
  const env = {
    DATABASE_URL: process.env.DATABASE_URL!,
    REDIS_URL: process.env.REDIS_URL!,
    JWT_SECRET: TEST_JWT_SECRET,
    API_KEY_PEPPER: TEST_PEPPER,
    PLANS_FILE: plansFile,
    DEMO: 'false',
    MIGRATIONS_RUN: 'false',
    UPSTREAM_ALLOWED_HOSTS: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  const [a, b] = await Promise.all([startReplica('A', env, join(dir, 'a')), startReplica('B', env, join(dir, 'b'))]);
  return { a, b, dir };
}
