import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuditRecorder } from '../../audit/application/audit-recorder.service';
import { actorOf, Principal } from '../../auth/principal';
import { AppConfig } from '../../config/app-config';
import type { RequestMeta } from '../../shared/domain/actor';
import { Clock } from '../../shared/domain/clock';
import { DomainError, NotFoundError, ValidationFailedError } from '../../shared/domain/domain-error';
import { UnitOfWork } from '../../shared/domain/unit-of-work';
import { DuplicateUpstreamNameError, exposeTools, sameEndpoint, Upstream, UPSTREAM_NAME, validateUpstreamHeaders } from '../domain/upstream';
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
 *
 * Listing tools is a network call that may take up to the server's timeout, so
 * it happens outside any transaction; the write that follows re-reads the row
 * under a lock and applies only what the operation changes (refresh: the
 * tools; PATCH: its own fields, and the tools listed with them), so a change
 * committed meanwhile is never overwritten with what was read before it, and
 * a row deleted meanwhile is 404 with nothing written or audited.
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
    // A taken name is refused before the upstream is contacted (which may fail or take up to its timeout).
    await this.refuseTakenName(p.tenantId, upstream.name);
    try {
      upstream.tools = await this.connector.listTools(upstream);
      upstream.toolsRefreshedAt = this.clock.now();
    } finally {
      await this.connector.forget(upstream.id);
    }
    await this.uow.run(async (tx) => {
      // The unique index stays the backstop: a registration of the same name that committed meanwhile is 409 too.
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
    const before = await this.get(p, id);
    const changes: Partial<Pick<Upstream, 'name' | 'url' | 'headers' | 'timeoutMs'>> = {};
    const changed: string[] = [];
    if (cmd.name !== undefined && cmd.name !== before.name) {
      this.refuseOperatorName(p, cmd.name);
      changes.name = checkName(cmd.name);
      changed.push('name');
    }
    if (cmd.url !== undefined) {
      changes.url = this.policy.check(cmd.url);
      changed.push('url');
      // Stored headers are credentials for the server's origin and are never shown: any admin could send
      // them to a host of their own by changing the url alone. A new origin needs its headers sent again.
      if (cmd.headers === undefined && Object.keys(before.headers).length > 0 && new URL(changes.url).origin !== new URL(before.url).origin) {
        throw new ValidationFailedError([
          { field: 'headers', message: 'must be sent again (or {} for none) when the url moves to another origin: stored headers never follow a server to a new origin' },
        ]);
      }
    }
    if (cmd.headers !== undefined) {
      changes.headers = validateUpstreamHeaders(cmd.headers);
      changed.push('headers');
    }
    if (cmd.timeoutMs !== undefined) {
      changes.timeoutMs = cmd.timeoutMs;
      changed.push('timeout_ms');
    }
    if (changed.length === 0) return before;
    if (changes.name !== undefined) await this.refuseTakenName(p.tenantId, changes.name, before.id);
    const updatedAt = this.clock.now();
    // A new url or new headers are validated by listing the tools through them, with the row's other settings as read now.
    const validated: Upstream = { ...before, ...changes, updatedAt };
    const listed = changes.url !== undefined || changes.headers !== undefined;
    if (listed) {
      await this.connector.forget(before.id);
      validated.tools = await this.connector.listTools(validated);
      validated.toolsRefreshedAt = this.clock.now();
    }
    return this.writeLocked(p, before.id, 'mcp_server.updated', request, (current) => {
      // The tools were listed through `validated`'s url and headers. A url or headers this PATCH did not set
      // but that another change replaced meanwhile would be stored with tools and a validation that never
      // went through them: refused with 409 (the caller reads the server again and decides), rather than
      // validated a second time against a combination nobody asked for. What this PATCH sets itself wins
      // over a concurrent change of the same field, as the later of two PATCHes does.
      if (listed && !sameEndpoint({ url: changes.url ?? current.url, headers: changes.headers ?? current.headers }, validated)) {
        throw new DomainError(
          'invalid_state',
          `MCP server ${id} changed while this change was being validated against its url and headers; read it again and retry.`,
        );
      }
      const next: Upstream = { ...current, ...changes, updatedAt };
      if (listed) {
        next.tools = validated.tools;
        next.toolsRefreshedAt = validated.toolsRefreshedAt;
      }
      return { next, metadata: { changed, name: next.name } };
    });
  }

  async refresh(p: Principal, id: string, request: RequestMeta): Promise<Upstream> {
    const before = await this.get(p, id);
    await this.connector.forget(before.id);
    const tools = await this.connector.listTools(before);
    const refreshedAt = this.clock.now();
    return this.writeLocked(p, before.id, 'mcp_server.refreshed', request, (current) => {
      // A url or headers changed meanwhile (a PATCH, which listed the tools of its own endpoint): the tools
      // listed here are of an endpoint the server no longer has. 409, and the PATCH's tools stay.
      if (!sameEndpoint(current, before)) {
        throw new DomainError('invalid_state', `MCP server ${id} changed while its tools were being listed; read it again and retry.`);
      }
      const next: Upstream = { ...current, tools, toolsRefreshedAt: refreshedAt, updatedAt: refreshedAt };
      return { next, metadata: { name: next.name, tools: tools.length } };
    });
  }

  async remove(p: Principal, id: string, request: RequestMeta): Promise<void> {
    const u = await this.get(p, id);
    await this.uow.run(async (tx) => {
      // Deleted by a concurrent request since it was read: 404 for this one, and one audit event in all.
      if (!(await this.upstreams.delete(p.tenantId, u.id, tx))) throw new NotFoundError(`MCP server ${id}`);
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

  private async refuseTakenName(tenantId: string, name: string, exceptId?: string): Promise<void> {
    if (await this.upstreams.nameTaken(tenantId, name, exceptId)) throw new DuplicateUpstreamNameError(name);
  }

  /**
   * In one transaction: re-reads the row `FOR UPDATE` (a concurrent PATCH,
   * refresh or DELETE of it waits, or has committed), lets `apply` derive the
   * row to write from it, writes it and audits `action`. A row gone by then is
   * 404 not_found, with nothing written or audited.
   */
  private async writeLocked(
    p: Principal,
    id: string,
    action: string,
    request: RequestMeta,
    apply: (current: Upstream) => { next: Upstream; metadata: Record<string, unknown> },
  ): Promise<Upstream> {
    const written = await this.uow.run(async (tx) => {
      const current = await this.upstreams.findByIdForUpdate(p.tenantId, id, tx);
      if (!current) throw new NotFoundError(`MCP server ${id}`);
      const { next, metadata } = apply(current);
      if (!(await this.upstreams.update(next, tx))) throw new NotFoundError(`MCP server ${id}`);
      await this.audit.record({ tenantId: p.tenantId, actor: actorOf(p), action, target: { type: 'mcp_server', id }, request, metadata }, tx);
      return next;
    });
    await this.catalog.invalidate(p.tenantId);
    return written;
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
