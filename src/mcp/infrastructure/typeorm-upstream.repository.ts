import { Injectable } from '@nestjs/common';
import { DataSource, Not, QueryFailedError } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { DuplicateUpstreamNameError, type Upstream, type UpstreamTool } from '../domain/upstream';
import { UpstreamRepository } from '../domain/upstream.repository';
import { HeaderCipher } from './header-cipher';
import { McpServerOrmEntity } from './mcp-server.orm-entity';

@Injectable()
export class TypeOrmUpstreamRepository extends UpstreamRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: HeaderCipher,
  ) {
    super();
  }

  async listByTenant(tenantId: string): Promise<Upstream[]> {
    const rows = await this.repo().find({ where: { tenantId }, order: { name: 'ASC' } });
    return rows.map((r) => this.toDomain(r));
  }

  async findById(tenantId: string, id: string): Promise<Upstream | null> {
    const row = await this.repo().findOneBy({ tenantId, id });
    return row ? this.toDomain(row) : null;
  }

  async findByIdForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<Upstream | null> {
    const row = await this.repo(tx).findOne({ where: { tenantId, id }, lock: { mode: 'pessimistic_write' } });
    return row ? this.toDomain(row) : null;
  }

  async nameTaken(tenantId: string, name: string, exceptId?: string): Promise<boolean> {
    return this.repo().exists({ where: { tenantId, name, ...(exceptId ? { id: Not(exceptId) } : {}) } });
  }

  async insert(u: Upstream, tx?: TransactionContext): Promise<void> {
    await duplicateNameGuard(u.name, () => this.repo(tx).insert(this.toRow(u)));
  }

  async update(u: Upstream, tx?: TransactionContext): Promise<boolean> {
    const { id, tenantId, ...changes } = this.toRow(u);
    const r = await duplicateNameGuard(u.name, () => this.repo(tx).update({ id, tenantId }, changes));
    return (r.affected ?? 0) > 0;
  }

  async delete(tenantId: string, id: string, tx?: TransactionContext): Promise<boolean> {
    const r = await this.repo(tx).delete({ tenantId, id });
    return (r.affected ?? 0) > 0;
  }

  private repo(tx?: TransactionContext) {
    return managerOf(this.dataSource, tx).getRepository(McpServerOrmEntity);
  }

  private toDomain(r: McpServerOrmEntity): Upstream {
    return {
      id: r.id,
      tenantId: r.tenantId,
      name: r.name,
      url: r.url,
      headers: this.cipher.decrypt(r.headersEncrypted),
      timeoutMs: r.timeoutMs,
      tools: r.tools as UpstreamTool[],
      toolsRefreshedAt: r.toolsRefreshedAt,
      createdBy: r.createdBy,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    };
  }

  private toRow(u: Upstream): McpServerOrmEntity {
    return {
      id: u.id,
      tenantId: u.tenantId,
      name: u.name,
      url: u.url,
      headersEncrypted: this.cipher.encrypt(u.headers),
      headerNames: Object.keys(u.headers),
      timeoutMs: u.timeoutMs,
      tools: u.tools,
      toolsRefreshedAt: u.toolsRefreshedAt,
      createdBy: u.createdBy,
      createdAt: u.createdAt,
      updatedAt: u.updatedAt,
    };
  }
}

/** A unique violation on (tenant_id, name) becomes the product's duplicate_name (the backstop of a race the service's check cannot see). */
async function duplicateNameGuard<T>(name: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof QueryFailedError && (err.driverError as { code?: string }).code === '23505') {
      throw new DuplicateUpstreamNameError(name);
    }
    throw err;
  }
}
