import type { TransactionContext } from '../../shared/domain/unit-of-work';

export interface Tenant {
  id: string;
  plan: string;
  createdAt: Date;
}

/** Port for tenants. Tenants come into being on first use (JWT tenant claim). */
export abstract class TenantRepository {
  /** Inserts the tenant with `defaultPlan` unless it exists; returns whether it was created. */
  abstract ensure(id: string, defaultPlan: string): Promise<boolean>;
  abstract find(id: string): Promise<Tenant | null>;
  /** Row-locks the tenant until `tx` ends: serializes per-tenant limits (key count). */
  abstract lock(id: string, tx: TransactionContext): Promise<Tenant>;
}
