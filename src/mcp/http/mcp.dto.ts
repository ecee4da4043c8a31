import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsObject, IsOptional, IsString, IsUrl, Length, Matches, Max, Min } from 'class-validator';
import { IsBoundedJsonObject } from '../../shared/http/json-size.validator';
import { IsOmittable } from '../../shared/http/validation';
import { exposeTools, ExposedTool, Upstream } from '../domain/upstream';
import { toolMeta } from './mcp-server.factory';

export class RegisterUpstreamDto {
  @ApiProperty({ pattern: '^[a-z0-9-]{1,32}$', example: 'github', description: 'Prefix of the exposed tool names (<name>__<tool>).' })
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/, { message: 'name must match ^[a-z0-9-]{1,32}$' })
  name: string;

  @ApiProperty({ example: 'https://mcp.example.com/mcp', description: 'Streamable HTTP endpoint; its host must be in UPSTREAM_ALLOWED_HOSTS.' })
  @IsString()
  @Length(1, 2048)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  url: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { Authorization: 'Bearer upstream-secret' }, description: 'Sent to the upstream; stored encrypted, never returned.' })
  @IsOmittable()
  @IsBoundedJsonObject(16_384, 1)
  headers?: Record<string, unknown>;

  @ApiPropertyOptional({ minimum: 100, maximum: 300_000, default: 30_000 })
  @IsOmittable()
  @IsInt()
  @Min(100)
  @Max(300_000)
  timeout_ms?: number;
}

export class UpdateUpstreamDto {
  @ApiPropertyOptional({ pattern: '^[a-z0-9-]{1,32}$' })
  @IsOmittable()
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/, { message: 'name must match ^[a-z0-9-]{1,32}$' })
  name?: string;

  @ApiPropertyOptional()
  @IsOmittable()
  @IsString()
  @Length(1, 2048)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  url?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Replaces all headers.' })
  @IsOmittable()
  @IsBoundedJsonObject(16_384, 1)
  headers?: Record<string, unknown>;

  @ApiPropertyOptional({ minimum: 100, maximum: 300_000 })
  @IsOmittable()
  @IsInt()
  @Min(100)
  @Max(300_000)
  timeout_ms?: number;
}

export class CallToolDto {
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { owner: 'acme', repo: 'web', title: 'Bug' } })
  @IsOptional()
  @IsObject()
  arguments?: Record<string, unknown>;
}

export function toToolResponse(t: ExposedTool) {
  const meta = toolMeta(t);
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    description: t.description,
    server: t.upstreamName,
    input_schema: t.inputSchema,
    ...(t.outputSchema ? { output_schema: t.outputSchema } : {}),
    ...(t.annotations ? { annotations: t.annotations } : {}),
    ...(t.icons ? { icons: t.icons } : {}),
    ...(t.execution ? { execution: t.execution } : {}),
    ...(meta ? { meta } : {}),
  };
}

/** An upstream as admins see it: header names only, never their values. */
export function toUpstreamResponse(u: Upstream) {
  const { tools, skipped } = exposeTools(u);
  return {
    id: u.id,
    name: u.name,
    url: u.url,
    header_names: Object.keys(u.headers),
    timeout_ms: u.timeoutMs,
    tools: tools.map(toToolResponse),
    skipped_tools: skipped,
    tools_refreshed_at: u.toolsRefreshedAt?.toISOString() ?? null,
    created_by: u.createdBy,
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}
