import { IsInt, IsObject, IsOptional, IsString, IsUrl, Length, Matches, Max, Min } from 'class-validator';
import { IsBoundedJsonObject } from '../../shared/http/json-size.validator';
import { exposeTools, ExposedTool, Upstream } from '../domain/upstream';

export class RegisterUpstreamDto {
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/, { message: 'name must match ^[a-z0-9-]{1,32}$' })
  name: string;

  @IsString()
  @Length(1, 2048)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  url: string;

  @IsOptional()
  @IsBoundedJsonObject(16_384, 1)
  headers?: Record<string, unknown>;

  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(300_000)
  timeout_ms?: number;
}

export class UpdateUpstreamDto {
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9-]{1,32}$/, { message: 'name must match ^[a-z0-9-]{1,32}$' })
  name?: string;

  @IsOptional()
  @IsString()
  @Length(1, 2048)
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  url?: string;

  @IsOptional()
  @IsBoundedJsonObject(16_384, 1)
  headers?: Record<string, unknown>;

  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(300_000)
  timeout_ms?: number;
}

export class CallToolDto {
  @IsOptional()
  @IsObject()
  arguments?: Record<string, unknown>;
}

export function toToolResponse(t: ExposedTool) {
  return {
    name: t.name,
    ...(t.title ? { title: t.title } : {}),
    description: t.description,
    server: t.upstreamName,
    input_schema: t.inputSchema,
    ...(t.outputSchema ? { output_schema: t.outputSchema } : {}),
    ...(t.annotations ? { annotations: t.annotations } : {}),
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
