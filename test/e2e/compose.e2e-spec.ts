import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ENV_NAMES } from '../../src/config/env.validation';

/**
 * Issue 6 §8: docker-compose.yml cannot run here (no Docker engine), so its
 * structure is checked instead: the services, their start order, two replicas
 * with one environment, the load balancer pointing at both, no secret in clear.
 */
const ROOT = join(__dirname, '..', '..');
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const REPLICAS = ['tollgate-a', 'tollgate-b'];

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
  restart?: string;
}

const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

/** `${NAME:?message}` (required) or `${NAME:-default}` / `${NAME}` references in a value. */
const REFERENCE = /\$\{([A-Z0-9_]+)(?::?[?-][^}]*)?\}/g;
const SECRET_NAME = /(PASSWORD|SECRET|PEPPER|TOKEN|PRIVATE)/;

describe('docker-compose.yml (structure; Docker itself is not available here)', () => {
  it('has PostgreSQL, Redis, a one-shot migration, two Tollgate replicas and a load balancer', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['lb', 'migrate', 'postgres', 'redis', 'tollgate-a', 'tollgate-b']);
    expect(service('postgres').image).toMatch(/^postgres:\d+/);
    expect(service('redis').image).toMatch(/^redis:\d+/);
    expect(service('lb').image).toMatch(/^nginx:/);
    expect(Object.keys(compose.volumes ?? {})).toContain('pgdata');
  });

  it('starts in order: databases healthy → migrations done → replicas healthy → load balancer', () => {
    expect(service('migrate').depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(service('migrate').command).toEqual(['node', 'dist/src/cli/main.js', 'migrate']);
    expect(service('migrate').restart).toBe('no');
    for (const r of REPLICAS) {
      expect(service(r).depends_on).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
    expect(service('lb').depends_on).toEqual({ 'tollgate-a': { condition: 'service_healthy' }, 'tollgate-b': { condition: 'service_healthy' } });
  });

  it('gives every long-running service a healthcheck (replicas: /health/ready)', () => {
    for (const name of ['postgres', 'redis', 'lb', ...REPLICAS]) {
      expect(service(name).healthcheck?.test.length).toBeGreaterThan(0);
    }
    for (const r of REPLICAS) expect(service(r).healthcheck!.test.join(' ')).toContain('/health/ready');
  });

  it('gives the replicas time to drain on stop: longer than SHUTDOWN_TIMEOUT_MS + 5 s of refunds (Docker kills after 10 s by default)', () => {
    for (const r of REPLICAS) {
      const grace = /^(\d+)s$/.exec(service(r).stop_grace_period ?? '');
      const timeout = Number(service(r).environment?.SHUTDOWN_TIMEOUT_MS ?? 10_000);
      expect(grace).not.toBeNull();
      expect(Number(grace![1]) * 1000).toBeGreaterThan(timeout + 5_000);
    }
  });

  it('runs two identical replicas (same image and environment) reachable only through the load balancer', () => {
    const [a, b] = REPLICAS.map(service);
    expect(a).toEqual(b);
    expect(a.build).toBe('.');
    expect(a.image).toBe(service('migrate').image);
    expect(a.ports).toBeUndefined();
    expect(service('migrate').environment).toEqual(a.environment);
  });

  it('wires the replicas as in production: known variables only, shared PostgreSQL and Redis, migrations off', () => {
    const env = service('tollgate-a').environment!;
    for (const name of Object.keys(env)) expect(ENV_NAMES).toContain(name);
    expect(env).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0', PORT: '3000', REDIS_URL: 'redis://redis:6379', MIGRATIONS_RUN: 'false', TRUST_PROXY: '1' });
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/tollgate:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432\/tollgate$/);
    // Production refuses HS256: management JWTs are verified against a JWKS.
    expect(env.JWT_SECRET).toBeUndefined();
    expect(env.JWT_JWKS_URI).toMatch(/^\$\{JWT_JWKS_URI:\?/);
  });

  it('holds no secret in clear: every secret is a required (or empty-default) reference to the environment', () => {
    const required = new Set<string>();
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        const refs = [...String(value).matchAll(REFERENCE)];
        if (SECRET_NAME.test(key)) {
          // The whole value is one reference: `${X:?…}` for required secrets, `${X:-}` for optional ones (off when empty).
          expect({ service: name, key, value }).toEqual({ service: name, key, value: expect.stringMatching(/^\$\{[A-Z0-9_]+(:\?[^}]+|:-)\}$/) });
        }
        for (const ref of refs) if (ref[0].includes(':?')) required.add(ref[1]);
        // A URL may carry a password only as a reference.
        const url = /^[a-z]+:\/\/[^:/@]+:([^@]+)@/.exec(String(value));
        if (url) expect(url[1]).toMatch(/^\$\{[A-Z0-9_]+(:\?[^}]*)?\}$/);
      }
    }
    expect([...required].sort()).toEqual(['API_KEY_PEPPER', 'JWT_AUDIENCE', 'JWT_ISSUER', 'JWT_JWKS_URI', 'POSTGRES_PASSWORD']);
  });

  it('puts nginx in front of both replicas (deploy/nginx.conf), publishing the only port', () => {
    const lb = service('lb');
    expect(lb.volumes).toContain('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(lb.ports).toEqual(['${TOLLGATE_PORT:-3000}:80']);
    const conf = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
    const upstream = /upstream\s+tollgate\s*\{([^}]*)\}/.exec(conf)?.[1] ?? '';
    const servers = [...upstream.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((m) => m[1]);
    expect(servers).toEqual(REPLICAS.map((r) => `${r}:${service(r).environment!.PORT}`));
    expect(conf).toMatch(/proxy_pass\s+http:\/\/tollgate;/);
    expect(conf).toMatch(/listen\s+80;/);
    // MCP responses may stream: no buffering; the agent's address reaches TRUST_PROXY, and a
    // client cannot choose it (nginx overwrites X-Forwarded-For; Tollgate trusts one hop).
    expect(conf).toMatch(/proxy_buffering\s+off;/);
    expect(conf).toMatch(/X-Forwarded-For\s+\$remote_addr;/);
    expect(conf).not.toMatch(/\$proxy_add_x_forwarded_for/);
    expect(conf).toMatch(/location = \/lb-health/);
    expect(service('lb').healthcheck!.test.join(' ')).toContain('/lb-health');
  });

  it('builds an image that contains what the compose file runs', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/CMD \["node", "--max-semi-space-size=32", "dist\/src\/main\.js"\]/);
    // The migrate service's entry point is compiled from src/cli/main.ts (tsconfig.build.json → dist/).
    expect(existsSync(join(ROOT, 'src', 'cli', 'main.ts'))).toBe(true);
    expect(dockerfile).toMatch(/COPY src \.\/src/);
  });
});
