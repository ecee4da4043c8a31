import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { APIKey } from '../domain/api-key';
import { DuplicateKeyNameError } from '../domain/api-key.errors';
import { APIKeyCursor, APIKeyListFilter, APIKeyRepository } from '../domain/api-key.repository';
import { PermissionScope } from '../domain/permission-scope';
import { APIKeyOrmEntity } from './api-key.orm-entity';

const UNIQUE_VIOLATION = '23505';

/** Columns aliased to APIKeyOrmEntity's property names, so toDomain() reads the row as it reads an entity. */
const COLUMNS = `id, tenant_id AS "tenantId", user_id AS "userId", name, key_hash AS "keyHash", start,
    permission_scope AS "permissionScope", enabled, expires_at AS "expiresAt", revoked_at AS "revokedAt",
    last_used_at AS "lastUsedAt", rotated_from AS "rotatedFrom", grace_until AS "graceUntil", metadata,
    monthly_credit_cap AS "monthlyCreditCap", lineage_id AS "lineageId", created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;

const FIND_BY_HASH = `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1`;

/** The keys `$2` replaced, and the keys those replaced, ... (its rotation chain, newest first), locked. */
const ANCESTORS_FOR_UPDATE = `WITH RECURSIVE chain(id, depth) AS (
    SELECT rotated_from, 1 FROM api_keys WHERE tenant_id = $1 AND id = $2 AND rotated_from IS NOT NULL
    UNION ALL
    SELECT k.rotated_from, c.depth + 1 FROM api_keys k JOIN chain c ON k.id = c.id
     WHERE k.tenant_id = $1 AND k.rotated_from IS NOT NULL AND c.depth < 10000
  )
  SELECT ${COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id IN (SELECT id FROM chain)
  ORDER BY created_at DESC, id DESC FOR UPDATE`;

@Injectable()
export class TypeOrmAPIKeyRepository extends APIKeyRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async findById(tenantId: string, id: string, tx?: TransactionContext): Promise<APIKey | null> {
    const row = await this.repo(managerOf(this.dataSource, tx)).findOneBy({ tenantId, id });
    return row ? toDomain(row) : null;
  }

  async findByIdForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<APIKey | null> {
    const row = await this.repo(managerOf(this.dataSource, tx))
      .createQueryBuilder('k')
      .setLock('pessimistic_write')
      .where('k.tenant_id = :tenantId AND k.id = :id', { tenantId, id })
      .getOne();
    return row ? toDomain(row) : null;
  }

  /**
   * The verification lookup (a cache miss): plain SQL instead of findOneBy,
   * whose query building and entity hydration were most of a cold verify's
   * CPU, and made a found key measurably slower to answer than an unknown
   * one (bench/README.md, S5).
   */
  async findByHash(keyHash: string): Promise<APIKey | null> {
    const rows: APIKeyOrmEntity[] = await this.dataSource.query(FIND_BY_HASH, [keyHash]);
    return rows.length > 0 ? toDomain(rows[0]) : null;
  }

  async list(filter: APIKeyListFilter, limit: number, after?: APIKeyCursor): Promise<APIKey[]> {
    const qb = this.repo(this.dataSource.manager)
      .createQueryBuilder('k')
      .where('k.tenant_id = :tenantId', { tenantId: filter.tenantId });
    if (filter.userId !== undefined) qb.andWhere('k.user_id = :userId', { userId: filter.userId });
    if (filter.name !== undefined) {
      qb.andWhere(`k.name ILIKE :name ESCAPE '\\'`, { name: `%${filter.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%` });
    }
    const now = filter.now;
    switch (filter.status) {
      case 'revoked':
        qb.andWhere('k.revoked_at IS NOT NULL AND k.revoked_at <= :now', { now });
        break;
      case 'expired':
        qb.andWhere('(k.revoked_at IS NULL OR k.revoked_at > :now)', { now }).andWhere(
          '((k.expires_at IS NOT NULL AND k.expires_at <= :now) OR (k.grace_until IS NOT NULL AND k.grace_until <= :now))',
          { now },
        );
        break;
      case 'disabled':
      case 'active':
        qb.andWhere('(k.revoked_at IS NULL OR k.revoked_at > :now)', { now })
          .andWhere('(k.expires_at IS NULL OR k.expires_at > :now)', { now })
          .andWhere('(k.grace_until IS NULL OR k.grace_until > :now)', { now })
          .andWhere('k.enabled = :enabled', { enabled: filter.status === 'active' });
        break;
      default:
        break;
    }
    if (after) {
      qb.andWhere('(k.created_at, k.id) < (:afterCreated, :afterId)', {
        afterCreated: after.createdAt,
        afterId: after.id,
      });
    }
    const rows = await qb.orderBy('k.created_at', 'DESC').addOrderBy('k.id', 'DESC').limit(limit).getMany();
    return rows.map(toDomain);
  }

  async ancestorsForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<APIKey[]> {
    const rows: APIKeyOrmEntity[] = await managerOf(this.dataSource, tx).query(ANCESTORS_FOR_UPDATE, [tenantId, id]);
    return rows.map(toDomain);
  }

  async countLive(tenantId: string, now: Date, tx?: TransactionContext): Promise<number> {
    return this.repo(managerOf(this.dataSource, tx))
      .createQueryBuilder('k')
      .where('k.tenant_id = :tenantId', { tenantId })
      .andWhere('k.revoked_at IS NULL')
      .andWhere('(k.expires_at IS NULL OR k.expires_at > :now)', { now })
      .andWhere('k.grace_until IS NULL')
      .getCount();
  }

  async insert(key: APIKey, tx?: TransactionContext): Promise<void> {
    await this.guardDuplicate(key, () => this.repo(managerOf(this.dataSource, tx)).insert(toRow(key)));
  }

  async update(key: APIKey, tx?: TransactionContext): Promise<void> {
    const { id, tenantId, ...changes } = toRow(key);
    await this.guardDuplicate(key, () => this.repo(managerOf(this.dataSource, tx)).update({ id, tenantId }, changes));
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.dataSource.query(
      `UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
      [id, at],
    );
  }

  private repo(manager: EntityManager) {
    return manager.getRepository(APIKeyOrmEntity);
  }

  private async guardDuplicate(key: APIKey, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (
        err instanceof QueryFailedError &&
        (err.driverError as { code?: string; constraint?: string })?.code === UNIQUE_VIOLATION &&
        (err.driverError as { constraint?: string }).constraint === 'uq_api_keys_tenant_live_name'
      ) {
        throw new DuplicateKeyNameError(key.name);
      }
      throw err;
    }
  }
}

function toDomain(row: APIKeyOrmEntity): APIKey {
  return APIKey.restore({
    id: row.id,
    tenantId: row.tenantId,
    userId: row.userId,
    name: row.name,
    keyHash: row.keyHash,
    start: row.start,
    scope: PermissionScope.parse(row.permissionScope),
    enabled: row.enabled,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
    lastUsedAt: row.lastUsedAt,
    rotatedFromId: row.rotatedFrom,
    graceUntil: row.graceUntil,
    metadata: row.metadata,
    monthlyCreditCap: row.monthlyCreditCap === null || row.monthlyCreditCap === undefined ? null : Number(row.monthlyCreditCap),
    ...(row.lineageId ? { lineageId: row.lineageId } : {}),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    createdBy: row.createdBy,
  });
}

function toRow(key: APIKey): APIKeyOrmEntity {
  const p = key.toProps();
  return {
    id: p.id,
    tenantId: p.tenantId,
    userId: p.userId,
    name: p.name,
    keyHash: p.keyHash,
    start: p.start,
    permissionScope: p.scope.toJSON(),
    enabled: p.enabled,
    expiresAt: p.expiresAt,
    revokedAt: p.revokedAt,
    lastUsedAt: p.lastUsedAt,
    rotatedFrom: p.rotatedFromId,
    graceUntil: p.graceUntil,
    metadata: p.metadata,
    monthlyCreditCap: p.monthlyCreditCap,
    lineageId: key.lineageId,
    createdBy: p.createdBy,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}
