import { Test } from '@nestjs/testing';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { configureApp, createFastifyAdapter } from '../../src/app.setup';
import { AppConfig } from '../../src/config/app-config';

export interface TestApp {
  app: NestFastifyApplication;
  db: DataSource;
  request(opts: {
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
    url: string;
    token?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  }): Promise<{ status: number; headers: Record<string, unknown>; body: any; text: string }>;
  close(): Promise<void>;
}

/**
 * Boots the real AppModule with the same configureApp() as main.ts, against
 * the run's migrated PostgreSQL. `env` overrides the test environment for this
 * app only (e.g. JWT_JWKS_URI).
 */
export interface ProviderOverride {
  provide: unknown;
  useValue: unknown;
}

export async function createTestApp(env: Record<string, string | undefined> = {}, overrides: ProviderOverride[] = []): Promise<TestApp> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  let app: NestFastifyApplication;
  try {
    let builder = Test.createTestingModule({ imports: [AppModule] });
    for (const o of overrides) builder = builder.overrideProvider(o.provide).useValue(o.useValue);
    const moduleRef = await builder.compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(createFastifyAdapter(moduleRef.get(AppConfig)), {
      // TEST_APP_LOGS=true shows the app's errors while debugging a test.
      logger: process.env.TEST_APP_LOGS === 'true' ? ['error', 'warn'] : false,
      rawBody: true,
    });
    await configureApp(app);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return {
    app,
    db: app.get(DataSource),
    async request({ method, url, token, body, rawBody, headers }) {
      const h: Record<string, string> = { ...(headers ?? {}) };
      if (token) h.authorization = `Bearer ${token}`;
      let payload: string | undefined;
      if (rawBody !== undefined) payload = rawBody;
      else if (body !== undefined) {
        payload = JSON.stringify(body);
        h['content-type'] ??= 'application/json';
      }
      const res = await app.inject({ method, url, headers: h, payload });
      let parsed: unknown = undefined;
      try {
        parsed = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.statusCode, headers: res.headers as Record<string, unknown>, body: parsed, text: res.body };
    },
    close: () => app.close(),
  };
}
