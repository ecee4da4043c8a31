import { Module } from '@nestjs/common';
import { APIKeysModule } from '../api-keys/api-keys.module';
import { AuditModule } from '../audit/audit.module';
import { AuthModule } from '../auth/auth.module';
import { PlansModule } from '../plans/plans.module';
import { UsageModule } from '../usage/usage.module';
import { McpGatewayService } from './application/mcp-gateway.service';
import { RedisConnection } from '../redis/redis.module';
import { CancellationRelay, LocalCancellationRelay } from './domain/cancellation-relay';
import { CircuitBreaker } from './domain/circuit-breaker';
import { ToolCatalog } from './application/tool-catalog';
import { UpstreamRegistryService } from './application/upstream-registry.service';
import { OperatorUpstreamProvider, UpstreamConnector, UpstreamRepository } from './domain/upstream.repository';
import { CallCancellations } from './http/call-cancellations';
import { McpServerFactory } from './http/mcp-server.factory';
import { McpServersController } from './http/mcp-servers.controller';
import { McpToolsController } from './http/mcp-tools.controller';
import { McpController } from './http/mcp.controller';
import { FileOperatorUpstreams } from './infrastructure/file-operator-upstreams';
import { HeaderCipher } from './infrastructure/header-cipher';
import { RedisCancellationRelay } from './infrastructure/redis-cancellation-relay';
import { SdkUpstreamConnector } from './infrastructure/sdk-upstream.connector';
import { TypeOrmUpstreamRepository } from './infrastructure/typeorm-upstream.repository';

/** The MCP gateway (M1–M5): /mcp, the REST mirror and the upstream registry. */
@Module({
  imports: [APIKeysModule, AuthModule, AuditModule, PlansModule, UsageModule],
  controllers: [McpController, McpToolsController, McpServersController],
  providers: [
    McpGatewayService,
    // 5 consecutive failures open an upstream's circuit for 30 s.
    { provide: CircuitBreaker, useFactory: () => new CircuitBreaker(5, 30_000) },
    ToolCatalog,
    UpstreamRegistryService,
    McpServerFactory,
    CallCancellations,
    {
      // Clients' cancellations reach the replica that runs the call: Redis pub/sub when configured.
      provide: CancellationRelay,
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection): CancellationRelay =>
        redis.client && redis.subscriber ? new RedisCancellationRelay(redis.client, redis.subscriber) : new LocalCancellationRelay(),
    },
    HeaderCipher,
    { provide: UpstreamRepository, useClass: TypeOrmUpstreamRepository },
    { provide: UpstreamConnector, useClass: SdkUpstreamConnector },
    { provide: OperatorUpstreamProvider, useClass: FileOperatorUpstreams },
  ],
  // The circuits, for readiness (health).
  exports: [CircuitBreaker],
})
export class McpModule {}
