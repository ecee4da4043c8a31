import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { APIKeysService } from '../api-keys/application/api-keys.service';
import { PermissionScope } from '../api-keys/domain/permission-scope';
import type { Principal } from '../auth/principal';
import { UpstreamRegistryService } from '../mcp/application/upstream-registry.service';
import type { RequestMeta } from '../shared/domain/actor';
import { TenantsService } from '../tenants/application/tenants.service';

export const DEMO_TENANT = 'demo';
const DEMO_KEY_NAME = 'demo-agent';
const DEMO_UPSTREAM = 'everything';
const SYSTEM: RequestMeta = { requestId: 'demo-bootstrap', ip: null, userAgent: 'tollgate-demo' };

export interface DemoSetup {
  upstreamUrl: string;
  keyToken: string;
  stop(): Promise<void>;
}

/**
 * `npm start` with no configuration: a real upstream MCP server
 * (@modelcontextprotocol/server-everything, a runtime dependency) on a free
 * loopback port, registered for the "demo" tenant, and a
 * fresh demo key (the previous one is revoked, since its secret cannot be shown again).
 */
export async function bootstrapDemo(app: INestApplicationContext): Promise<DemoSetup | null> {
  const entry = findEverythingEntry();
  if (!entry) return null;
  const port = await freePort();
  const child = spawn(process.execPath, [entry, 'streamableHttp'], {
    // A third-party process: it gets what it needs to run, none of Tollgate's secrets.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), NODE_ENV: 'development' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    });
  try {
    await waitForListening(child);
    const admin: Principal = { sub: 'tollgate-demo', tenantId: DEMO_TENANT, roles: ['admin'], scope: PermissionScope.unrestricted() };
    const upstreamUrl = `http://127.0.0.1:${port}/mcp`;
    await app.get(TenantsService).ensureExists(DEMO_TENANT);
    const registry = app.get(UpstreamRegistryService);
    const existing = (await registry.list(admin)).find((u) => u.name === DEMO_UPSTREAM);
    if (existing) await registry.update(admin, existing.id, { url: upstreamUrl }, SYSTEM);
    else await registry.register(admin, { name: DEMO_UPSTREAM, url: upstreamUrl }, SYSTEM);

    const keys = app.get(APIKeysService);
    const previous = await keys.list(admin, { limit: 100, name: DEMO_KEY_NAME, status: 'active' });
    for (const k of previous.data.filter((k) => k.name === DEMO_KEY_NAME)) await keys.revoke(admin, k.id, SYSTEM);
    const { token } = await keys.create(
      admin,
      { name: DEMO_KEY_NAME, permissionScope: { mcp_tool_ids: ['everything__*'] }, metadata: { demo: true } },
      SYSTEM,
    );
    return { upstreamUrl, keyToken: token, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function findEverythingEntry(): string | null {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return null;
}

function waitForListening(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the demo upstream did not start within 20 s')), 20_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo upstream exited with code ${code}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(p));
    });
  });
}
