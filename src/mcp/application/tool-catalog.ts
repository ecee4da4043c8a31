import { Injectable, Logger } from '@nestjs/common';
import { ExposedTool, exposeTools, Upstream } from '../domain/upstream';
import { OperatorUpstreamProvider, UpstreamRepository } from '../domain/upstream.repository';

interface TenantCatalog {
  tools: Map<string, ExposedTool>;
  upstreams: Map<string, Upstream>;
  loadedAt: number;
}

/** How long another replica's registry change may take to show here (until Redis fan-out lands). */
const TTL_MS = 30_000;

/**
 * The tools a tenant exposes, built from the registry's cached discoveries.
 * Held in memory so tools/list and tools/call do not read PostgreSQL per
 * request; registry changes in this process invalidate it at once.
 */
@Injectable()
export class ToolCatalog {
  private readonly logger = new Logger(ToolCatalog.name);
  private readonly cache = new Map<string, Promise<TenantCatalog>>();

  constructor(
    private readonly upstreams: UpstreamRepository,
    private readonly operator: OperatorUpstreamProvider,
  ) {}

  async tools(tenantId: string): Promise<ExposedTool[]> {
    return [...(await this.load(tenantId)).tools.values()];
  }

  async find(tenantId: string, name: string): Promise<{ tool: ExposedTool; upstream: Upstream } | null> {
    const catalog = await this.load(tenantId);
    const tool = catalog.tools.get(name);
    const upstream = tool ? catalog.upstreams.get(tool.upstreamId) : undefined;
    return tool && upstream ? { tool, upstream } : null;
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }

  private async load(tenantId: string): Promise<TenantCatalog> {
    const cached = this.cache.get(tenantId);
    if (cached) {
      const c = await cached;
      if (Date.now() - c.loadedAt < TTL_MS) return c;
      this.cache.delete(tenantId);
    }
    const pending = this.build(tenantId);
    this.cache.set(tenantId, pending);
    pending.catch(() => this.cache.delete(tenantId));
    return pending;
  }

  private async build(tenantId: string): Promise<TenantCatalog> {
    const [registered, declared] = await Promise.all([this.upstreams.listByTenant(tenantId), this.operator.forTenant(tenantId)]);
    // Operator-declared upstreams win a name clash (registration refuses their names anyway).
    const names = new Set(declared.map((u) => u.name));
    const list = [...declared, ...registered.filter((u) => !names.has(u.name))];
    const tools = new Map<string, ExposedTool>();
    const upstreams = new Map<string, Upstream>();
    for (const u of list) {
      upstreams.set(u.id, u);
      const { tools: exposed, skipped } = exposeTools(u);
      if (skipped.length) this.logger.warn(`upstream ${u.name}: tools left out (name pattern): ${skipped.join(', ')}`);
      for (const t of exposed) tools.set(t.name, t);
    }
    return { tools, upstreams, loadedAt: Date.now() };
  }
}
