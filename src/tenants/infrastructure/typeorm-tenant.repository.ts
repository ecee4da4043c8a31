import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { Tenant, TenantRepository } from '../domain/tenant.repository';
import { TenantOrmEntity } from './tenant.orm-entity';

@Injectable()
export class TypeOrmTenantRepository extends TenantRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async ensure(id: string, defaultPlan: string): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `INSERT INTO tenants (id, plan) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [id, defaultPlan],
    );
    return rows.length > 0;
  }

  async find(id: string): Promise<Tenant | null> {
    const row = await this.dataSource.getRepository(TenantOrmEntity).findOneBy({ id });
    return row ? { id: row.id, plan: row.plan, createdAt: row.createdAt } : null;
  }

  async lock(id: string, tx: TransactionContext): Promise<Tenant> {
    const row = await managerOf(this.dataSource, tx)
      .getRepository(TenantOrmEntity)
      .createQueryBuilder('t')
      .setLock('pessimistic_write')
      .where('t.id = :id', { id })
      .getOne();
    if (!row) throw new Error(`Tenant ${id} does not exist`);
    return { id: row.id, plan: row.plan, createdAt: row.createdAt };
  }
}
