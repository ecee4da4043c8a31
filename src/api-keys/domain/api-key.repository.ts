import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { APIKey, APIKeyStatus } from './api-key';

export interface APIKeyListFilter {
  tenantId: string;
  userId?: string;
  status?: APIKeyStatus;
  /** Case-insensitive substring of the name. */
  name?: string;
  now: Date;
}

/** Position after the last item of a page: keys are listed newest first. */
export interface APIKeyCursor {
  createdAt: Date;
  id: string;
}

/** Port for API keys (adapter: infrastructure/typeorm-api-key.repository.ts). */
export abstract class APIKeyRepository {
  abstract findById(tenantId: string, id: string, tx?: TransactionContext): Promise<APIKey | null>;
  /** Row-locks the key until `tx` ends (state changes are read-modify-write). */
  abstract findByIdForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<APIKey | null>;
  abstract findByHash(keyHash: string): Promise<APIKey | null>;
  /** The keys `id` replaced by rotation, and the keys those replaced, and so on (newest first), row-locked until `tx` ends. */
  abstract ancestorsForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<APIKey[]>;
  abstract list(filter: APIKeyListFilter, limit: number, after?: APIKeyCursor): Promise<APIKey[]>;
  /**
   * Keys of the tenant that are active or disabled and not rotated away (they
   * count toward the plan's limit). A key in its rotation grace period is being
   * replaced by its successor, which counts: a rotation never hits the limit.
   */
  abstract countLive(tenantId: string, now: Date, tx?: TransactionContext): Promise<number>;
  /** Throws DuplicateKeyNameError when a live key of the tenant has the same name. */
  abstract insert(key: APIKey, tx?: TransactionContext): Promise<void>;
  /** Throws DuplicateKeyNameError when a live key of the tenant has the same name. */
  abstract update(key: APIKey, tx?: TransactionContext): Promise<void>;
  /** Sets last_used_at without touching updated_at (hot path, best effort). */
  abstract touch(id: string, at: Date): Promise<void>;
}
