import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { actorOf, Principal } from '../../auth/principal';
import { AppConfig } from '../../config/app-config';
import type { RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { DomainError, NotFoundError, ValidationFailedError } from '../../shared/domain/domain-error';
import { UnitOfWork } from '../../shared/domain/unit-of-work';
import { exposeTools, Upstream, UPSTREAM_NAME, validateUpstreamHeaders } from '../domain/upstream';
import { UpstreamUrlPolicy } from '../domain/upstream-url-policy';
import { OperatorUpstreamProvider, UpstreamConnector, UpstreamRepository } from '../domain/upstream.repository';
import { ToolCatalog } from './tool-catalog';

export interface RegisterUpstreamCommand {
  name: string;
  url: string;
  headers?: Record<string, unknown>;
  timeoutMs?: number;
}

export type UpdateUpstreamCommand = Partial<RegisterUpstreamCommand>;

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;

/**
 * M2: the tenant's upstream MCP servers. Tools are discovered when a server is
 * registered, changed or refreshed; a server that cannot be reached is not
 * registered (nothing half-written).
 */
@Injectable()
export class UpstreamRegistryService {
  private readonly policy: UpstreamUrlPolicy;

  constructor(
    private readonly upstreams: UpstreamRepository,
    private readonly connector: UpstreamConnector,
    private readonly catalog: ToolCatalog,
    private readonly audit: AuditRecorder,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
    private readonly operator: OperatorUpstreamProvider,
    config: AppConfig,
  ) {
    this.policy = new UpstreamUrlPolicy(config.upstreamAllowedHosts);
  }

  async register(p: Principal, cmd: RegisterUpstreamCommand, request: RequestMeta): Promise<Upstream> {
    const now = this.clock.now();
    this.refuseOperatorName(p, cmd.name);
    const upstream: Upstream = {
      id: randomUUID(),
      tenantId: p.tenantId,
      name: checkName(cmd.name),
      url: this.policy.check(cmd.url),
      headers: validateUpstreamHeaders(cmd.headers ?? {}),
      timeoutMs: cmd.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
      tools: [],
      toolsRefreshedAt: null,
      createdBy: p.sub,
      createdAt: now,
      updatedAt: now,
    };
    try {
      upstream.tools = await this.connector.listTools(upstream);
      upstream.toolsRefreshedAt = this.clock.now();
    } finally {
      await this.connector.forget(upstream.id);
    }
    await this.uow.run(async (tx) => {
      await this.upstreams.insert(upstream, tx);
      await this.audit.record(
        {
          tenantId: p.tenantId,
          actor: actorOf(p),
          action: 'mcp_server.registered',
          target: { type: 'mcp_server', id: upstream.id },
          request,
          metadata: { name: upstream.name, url: upstream.url, header_names: Object.keys(upstream.headers), tools: upstream.tools.length },
        },
        tx,
      );
    });
    await this.catalog.invalidate(p.tenantId);
    return upstream;
  }

  list(p: Principal): Promise<Upstream[]> {
    return this.upstreams.listByTenant(p.tenantId);
  }

  async get(p: Principal, id: string): Promise<Upstream> {
    const u = isUuid(id) ? await this.upstreams.findById(p.tenantId, id) : null;
    if (!u) throw new NotFoundError(`MCP server ${id}`);
    return u;
  }

  async update(p: Principal, id: string, cmd: UpdateUpstreamCommand, request: RequestMeta): Promise<Upstream> {
    const u = await this.get(p, id);
    const changed: string[] = [];
    if (cmd.name !== undefined && cmd.name !== u.name) {
      this.refuseOperatorName(p, cmd.name);
      u.name = checkName(cmd.name);
      changed.push('name');
    }
    if (cmd.url !== undefined) {
      u.url = this.policy.check(cmd.url);
      changed.push('url');
    }
    if (cmd.headers !== undefined) {
      u.headers = validateUpstreamHeaders(cmd.headers);
      changed.push('headers');
    }
    if (cmd.timeoutMs !== undefined) {
      u.timeoutMs = cmd.timeoutMs;
      changed.push('timeout_ms');
    }
    if (changed.length === 0) return u;
    u.updatedAt = this.clock.now();
    if (changed.includes('url') || changed.includes('headers')) {
      await this.connector.forget(u.id);
      u.tools = await this.connector.listTools(u);
      u.toolsRefreshedAt = this.clock.now();
    }
    await this.save(p, u, 'mcp_server.updated', request, { changed, name: u.name });
    return u;
  }

  async refresh(p: Principal, id: string, request: RequestMeta): Promise<Upstream> {
    const u = await this.get(p, id);
    await this.connector.forget(u.id);
    u.tools = await this.connector.listTools(u);
    u.toolsRefreshedAt = this.clock.now();
    u.updatedAt = u.toolsRefreshedAt;
    await this.save(p, u, 'mcp_server.refreshed', request, { name: u.name, tools: u.tools.length });
    return u;
  }

  async remove(p: Principal, id: string, request: RequestMeta): Promise<void> {
    const u = await this.get(p, id);
    await this.uow.run(async (tx) => {
      await this.upstreams.delete(p.tenantId, u.id, tx);
      await this.audit.record(
        { tenantId: p.tenantId, actor: actorOf(p), action: 'mcp_server.deleted', target: { type: 'mcp_server', id: u.id }, request, metadata: { name: u.name } },
        tx,
      );
    });
    await this.connector.forget(u.id);
    await this.catalog.invalidate(p.tenantId);
  }

  /** Exposed names of an upstream's tools (for responses). */
  exposed(u: Upstream) {
    return exposeTools(u);
  }

  private refuseOperatorName(p: Principal, name: string): void {
    if (this.operator.hasName(p.tenantId, name)) {
      throw new DomainError('duplicate_name', `The name "${name}" is taken by an upstream the operator declared.`, { name });
    }
  }

  private async save(p: Principal, u: Upstream, action: string, request: RequestMeta, metadata: Record<string, unknown>) {
    await this.uow.run(async (tx) => {
      await this.upstreams.update(u, tx);
      await this.audit.record(
        { tenantId: p.tenantId, actor: actorOf(p), action, target: { type: 'mcp_server', id: u.id }, request, metadata },
        tx,
      );
    });
    await this.catalog.invalidate(p.tenantId);
  }
}

function checkName(name: string): string {
  if (typeof name !== 'string' || !UPSTREAM_NAME.test(name)) {
    throw new ValidationFailedError([{ field: 'name', message: 'must match ^[a-z0-9-]{1,32}$' }]);
  }
  return name;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isUuid(id: string): boolean {
  return UUID.test(id);
}
