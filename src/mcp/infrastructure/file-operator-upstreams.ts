import { Injectable, Logger } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { AppConfig } from '../../config/app-config';
import { OperatorUpstreamSpec, parseOperatorUpstreams } from '../domain/operator-upstreams';
import type { Upstream } from '../domain/upstream';
import { OperatorUpstreamProvider, UpstreamConnector } from '../domain/upstream.repository';

/** After a failed discovery, how long before an operator upstream is tried again. */
const RETRY_MS = 30_000;

interface Discovered {
  upstream: Upstream;
  at: number;
  ok: boolean;
}

/**
 * Upstreams from UPSTREAMS_FILE (parsed at start-up: a bad file stops the
 * process with every problem listed). Their tools are discovered lazily on
 * first use and kept for the process lifetime; a failed discovery is retried.
 */
@Injectable()
export class FileOperatorUpstreams extends OperatorUpstreamProvider {
  private readonly logger = new Logger(FileOperatorUpstreams.name);
  private readonly specs: OperatorUpstreamSpec[];
  private readonly discovered = new Map<string, Promise<Discovered>>();
  private readonly startedAt = new Date();

  constructor(
    config: AppConfig,
    private readonly connector: UpstreamConnector,
  ) {
    super();
    this.specs = config.upstreamsFile ? parseOperatorUpstreams(JSON.parse(readFileSync(config.upstreamsFile, 'utf8'))) : [];
  }

  hasName(tenantId: string, name: string): boolean {
    return this.specs.some((s) => s.name === name && (s.tenantId === tenantId || s.tenantId === '*'));
  }

  async forTenant(tenantId: string): Promise<Upstream[]> {
    const specs = this.specs.filter((s) => s.tenantId === tenantId || s.tenantId === '*');
    const found = await Promise.all(specs.map((s) => this.discover(s)));
    return found.filter((d) => d.ok).map((d) => ({ ...d.upstream, tenantId }));
  }

  private discover(spec: OperatorUpstreamSpec): Promise<Discovered> {
    const id = `config:${spec.tenantId}:${spec.name}`;
    const cached = this.discovered.get(id);
    if (cached) {
      return cached.then((d) => (d.ok || Date.now() - d.at < RETRY_MS ? d : this.start(id, spec)));
    }
    return this.start(id, spec);
  }

  private start(id: string, spec: OperatorUpstreamSpec): Promise<Discovered> {
    const upstream: Upstream = {
      id,
      tenantId: spec.tenantId,
      name: spec.name,
      url: spec.url ?? '',
      ...(spec.stdio ? { stdio: spec.stdio } : {}),
      source: 'config',
      headers: spec.headers,
      timeoutMs: spec.timeoutMs,
      tools: [],
      toolsRefreshedAt: null,
      createdBy: 'operator',
      createdAt: this.startedAt,
      updatedAt: this.startedAt,
    };
    const pending = this.connector
      .listTools(upstream)
      .then((tools) => ({ upstream: { ...upstream, tools, toolsRefreshedAt: new Date() }, at: Date.now(), ok: true }))
      .catch((err: Error) => {
        this.logger.warn(`operator upstream ${spec.name}: tool discovery failed: ${err.message}`);
        return { upstream, at: Date.now(), ok: false };
      });
    this.discovered.set(id, pending);
    return pending;
  }
}
