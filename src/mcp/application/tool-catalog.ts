import { Injectable, Logger } from '@nestjs/common';
import { InvalidationBus } from '../../shared/domain/invalidation-bus';
import { ExposedTool, exposeTools, Upstream } from '../domain/upstream';
import { OperatorUpstreamProvider, UpstreamRepository } from '../domain/upstream.repository';

interface TenantCatalog {
  tools: Map<string, ExposedTool>;
  upstreams: Map<string, Upstream>;
  loadedAt: number;
  /** The tools sorted by name, built once per catalog (see sorted()). */
  sorted?: readonly ExposedTool[];
}

/** How long another replica's registry change may take to show here when its broadcast is lost. */
const TTL_MS = 30_000;

/**
 * The tools a tenant exposes, built from the registry's cached discoveries.
 * Held in memory so tools/list and tools/call do not read PostgreSQL per
 * request; registry changes invalidate it at once here and, through the
 * InvalidationBus, on every other replica.
 */
@Injectable()
export class ToolCatalog {
  private readonly logger = new Logger(ToolCatalog.name);
  private readonly cache = new Map<string, Promise<TenantCatalog>>();

  constructor(
    private readonly upstreams: UpstreamRepository,
    private readonly operator: OperatorUpstreamProvider,
    private readonly bus: InvalidationBus,
  ) {
    bus.subscribe('tenant_catalog', (tenantId) => (tenantId === null ? this.cache.clear() : this.cache.delete(tenantId)));
  }

  async tools(tenantId: string): Promise<ExposedTool[]> {
    return [...(await this.load(tenantId)).tools.values()];
  }

  /**
   * The tenant's tools sorted by name, computed once per catalog and shared by
   * every caller: the array's identity is the catalog version (a reload or an
   * invalidation yields a new array), so per-caller views can be cached
   * against it. Frozen: callers must not mutate it.
   */
  async sorted(tenantId: string): Promise<readonly ExposedTool[]> {
    const catalog = await this.load(tenantId);
    catalog.sorted ??= Object.freeze([...catalog.tools.values()].sort((a, b) => a.name.localeCompare(b.name)));
    return catalog.sorted;
  }

  async find(tenantId: string, name: string): Promise<{ tool: ExposedTool; upstream: Upstream } | null> {
    const catalog = await this.load(tenantId);
    const tool = catalog.tools.get(name);
    const upstream = tool ? catalog.upstreams.get(tool.upstreamId) : undefined;
    return tool && upstream ? { tool, upstream } : null;
  }

  /** Drops the tenant's catalog here and on every replica; call after the registry change has committed. */
  invalidate(tenantId: string): Promise<void> {
    return this.bus.publish({ kind: 'tenant_catalog', id: tenantId });
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
