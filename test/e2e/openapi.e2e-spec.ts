import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBLEM_STATUS } from '../../src/shared/http/problem-status';
import { createTestApp, TestApp } from '../support/create-test-app';

/** Every (method, path) the running Fastify instance serves, from its route tree. */
function liveRoutes(t: TestApp): { method: string; path: string }[] {
  const tree = t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false });
  const stack: string[] = [];
  const out: { method: string; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│├└─\s]*)(\/\S*) \(([^)]+)\)$/.exec(line);
    if (!m) continue;
    // Top-level lines start with "├── " (4 characters); each level below adds 4.
    const depth = Math.round(m[1].length / 4) - 1;
    stack.length = depth;
    const path = (depth > 0 ? stack[depth - 1] : '') + m[2];
    stack[depth] = path;
    for (const method of m[3].split(',').map((s) => s.trim())) {
      // HEAD is Fastify's automatic twin of GET.
      if (method !== 'HEAD') out.push({ method, path });
    }
  }
  return out;
}

/** `/api/v1/api-keys/:id` → `/api/v1/api-keys/{id}` */
const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Routes that are not the API: the documentation itself and the Prometheus endpoint. */
const UNDOCUMENTED = (path: string) => path === '/docs' || path.startsWith('/docs/') || path === '/metrics';

describe('OpenAPI document (O1)', () => {
  let t: TestApp;
  let doc: any;

  beforeAll(async () => {
    t = await createTestApp();
    const res = await t.request({ method: 'GET', url: '/docs/openapi.json' });
    expect(res.status).toBe(200);
    doc = res.body;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('serves the Swagger UI at /docs with its assets', async () => {
    const ui = await t.request({ method: 'GET', url: '/docs' });
    expect(ui.status).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
    expect(ui.text).toContain('swagger-ui-bundle.js');
    for (const asset of ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css', '/docs/swagger-ui-init.js']) {
      const res = await t.request({ method: 'GET', url: asset });
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
    }
    const init = await t.request({ method: 'GET', url: '/docs/swagger-ui-init.js' });
    expect(init.text).toContain('/docs/openapi.json');
  });

  it('is a valid OpenAPI 3 document (@apidevtools/swagger-parser)', () => {
    expect(doc.openapi).toMatch(/^3\./);
    // swagger-parser's dependencies are ESM-only, which Jest's module loader cannot require: validate in plain Node.
    const file = join(mkdtempSync(join(tmpdir(), 'tollgate-openapi-')), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const script = `require('@apidevtools/swagger-parser').validate(process.argv[1]).then(() => console.log('valid'), (e) => { console.error(e.message); process.exit(1); })`;
    const r = spawnSync(process.execPath, ['-e', script, file], { cwd: join(__dirname, '..', '..'), encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout.trim()).toBe('valid');
  });

  it('lists every route the running app serves', () => {
    const routes = liveRoutes(t).filter((r) => !UNDOCUMENTED(r.path));
    expect(routes.length).toBeGreaterThan(20);
    const missing = routes.filter((r) => !doc.paths?.[toOpenApiPath(r.path)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
    // And nothing is documented that is not served.
    const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${toOpenApiPath(r.path)}`));
    const ghosts: string[] = [];
    for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(ops)) if (!served.has(`${method} ${path}`)) ghosts.push(`${method} ${path}`);
    }
    expect(ghosts).toEqual([]);
  });

  it('declares both security schemes and uses them on management and agent routes', () => {
    expect(doc.components.securitySchemes['management-jwt']).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.securitySchemes['agent-api-key']).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
    expect(doc.components.securitySchemes['agent-bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/v1/api-keys'].post.security).toEqual([{ 'management-jwt': [] }]);
    expect(doc.paths['/api/v1/mcp/tools/{name}/call'].post.security).toEqual(expect.arrayContaining([{ 'agent-api-key': [] }, { 'agent-bearer': [] }]));
    expect(doc.paths['/mcp'].post.security).toEqual(expect.arrayContaining([{ 'agent-api-key': [] }, { 'agent-bearer': [] }]));
    expect(doc.paths['/api/v1/plans'].get.security).toBeUndefined();
  });

  it('has a tag per module and request/response schemas', () => {
    const tags = new Set<string>();
    for (const ops of Object.values<Record<string, { tags?: string[] }>>(doc.paths)) for (const op of Object.values(ops)) for (const tag of op.tags ?? []) tags.add(tag);
    for (const tag of ['api-keys', 'audit-logs', 'credits', 'plans', 'billing', 'usage', 'mcp', 'mcp-tools', 'mcp-servers', 'health']) expect(tags).toContain(tag);

    const create = doc.paths['/api/v1/api-keys'].post;
    expect(create.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/CreateAPIKeyDto');
    expect(create.responses['201'].content['application/json'].schema.$ref).toBe('#/components/schemas/CreatedAPIKeyResponseDto');
    expect(doc.components.schemas.CreatedAPIKeyResponseDto.required ?? []).toContain('token');
    expect(doc.components.schemas.CreateAPIKeyDto.required).toEqual(expect.arrayContaining(['name', 'permission_scope']));
    expect(doc.paths['/api/v1/api-keys/{id}'].get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/APIKeyResponseDto');
  });

  it('documents every problem code with an example, on the status the filter sends', () => {
    const seen = new Map<string, number>();
    for (const ops of Object.values<Record<string, { responses?: Record<string, any> }>>(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          const examples = response.content?.['application/problem+json']?.examples ?? {};
          for (const [code, example] of Object.entries<any>(examples)) {
            expect({ code, status: Number(status), exampleStatus: example.value.status, exampleCode: example.value.code }).toEqual({
              code,
              status: PROBLEM_STATUS[code as keyof typeof PROBLEM_STATUS],
              exampleStatus: Number(status),
              exampleCode: code,
            });
            seen.set(code, Number(status));
          }
        }
      }
    }
    expect([...seen.keys()].sort()).toEqual(Object.keys(PROBLEM_STATUS).sort());
    // A route-specific code and a class-wide one sharing a status are both listed.
    const forbidden = doc.paths['/api/v1/api-keys'].post.responses['403'].content['application/problem+json'].examples;
    expect(Object.keys(forbidden)).toEqual(expect.arrayContaining(['forbidden', 'scope_too_wide', 'key_limit_reached']));
    expect(doc.components.schemas.ProblemDto.properties.code.enum).toEqual(expect.arrayContaining(Object.keys(PROBLEM_STATUS)));
  });
});
