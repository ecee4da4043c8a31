import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { TenantsModule } from '../tenants/tenants.module';
import { DevTokenIssuer } from './dev-token.issuer';
import { JwtAuthGuard } from './jwt-auth.guard';
import { ManagementTokenVerifier } from './management-token.verifier';
import { RolesGuard } from './roles.guard';

/** Management authentication (A1) and roles (A2). */
@Module({
  imports: [JwtModule.register({}), TenantsModule],
  providers: [ManagementTokenVerifier, JwtAuthGuard, RolesGuard, DevTokenIssuer],
  exports: [ManagementTokenVerifier, JwtAuthGuard, RolesGuard, DevTokenIssuer, TenantsModule],
})
export class AuthModule {}
