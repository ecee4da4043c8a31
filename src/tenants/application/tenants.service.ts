import { Injectable } from '@nestjs/common';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { Tenant, TenantRepository } from '../domain/tenant.repository';

/** Until the plans issue lands, every new tenant starts on this plan. */
export const DEFAULT_PLAN = 'free';

@Injectable()
export class TenantsService {
  /** Tenants already known to exist in this process: skips the upsert on the hot path. */
  private readonly known = new Set<string>();

  constructor(private readonly tenants: TenantRepository) {}

  /** Creates the tenant with the default plan on first use. */
  async ensureExists(tenantId: string): Promise<void> {
    if (this.known.has(tenantId)) return;
    await this.tenants.ensure(tenantId, DEFAULT_PLAN);
    if (this.known.size > 100_000) this.known.clear();
    this.known.add(tenantId);
  }

  find(tenantId: string): Promise<Tenant | null> {
    return this.tenants.find(tenantId);
  }

  lock(tenantId: string, tx: TransactionContext): Promise<Tenant> {
    return this.tenants.lock(tenantId, tx);
  }
}
