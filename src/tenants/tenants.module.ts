import { Module } from '@nestjs/common';
import { TenantsService } from './application/tenants.service';
import { TenantRepository } from './domain/tenant.repository';
import { TypeOrmTenantRepository } from './infrastructure/typeorm-tenant.repository';

@Module({
  providers: [TenantsService, { provide: TenantRepository, useClass: TypeOrmTenantRepository }],
  exports: [TenantsService],
})
export class TenantsModule {}
