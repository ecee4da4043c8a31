import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ToolResponseDto {
  @ApiProperty({ example: 'github__create_issue', description: '<upstream>__<tool>' })
  name: string;

  @ApiPropertyOptional()
  title?: string;

  @ApiProperty({ example: 'Create an issue in a repository.' })
  description: string;

  @ApiProperty({ example: 'github', description: 'The upstream serving the tool.' })
  server: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'JSON Schema of the arguments.' })
  input_schema: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  output_schema?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  annotations?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'array', items: { type: 'object', additionalProperties: true }, description: "The upstream's icons for the tool (MCP `icons`)." })
  icons?: Record<string, unknown>[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'MCP `execution` (e.g. task support).' })
  execution?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "The tool's MCP `_meta`, without the keys the MCP specification reserves." })
  meta?: Record<string, unknown>;
}

export class ToolListResponseDto {
  @ApiProperty({ type: [ToolResponseDto] })
  data: ToolResponseDto[];
}

/** The MCP CallToolResult as the upstream produced it, plus the caller's budget in `_meta`. */
export class ToolCallResponseDto {
  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true }, example: [{ type: 'text', text: 'ok' }] })
  content: Record<string, unknown>[];

  @ApiPropertyOptional({ description: 'true when the tool itself reported an error (still charged: the upstream served it).' })
  isError?: boolean;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  structuredContent?: Record<string, unknown>;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: '`io.tollgate/budget`: remaining requests, tokens and credits after this call.',
    example: { 'io.tollgate/budget': { requests_remaining: 999, credits_remaining: 249 } },
  })
  _meta: Record<string, unknown>;
}

export class UpstreamResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'github' })
  name: string;

  @ApiProperty({ example: 'https://mcp.example.com/mcp' })
  url: string;

  @ApiProperty({ type: [String], example: ['Authorization'], description: 'Header names only: values are stored encrypted and never returned.' })
  header_names: string[];

  @ApiProperty({ example: 30000 })
  timeout_ms: number;

  @ApiProperty({ type: [ToolResponseDto] })
  tools: ToolResponseDto[];

  @ApiProperty({ type: [String], description: 'Upstream tools not exposed (names that do not fit the exposed-name rules).' })
  skipped_tools: string[];

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  tools_refreshed_at: string | null;

  @ApiProperty()
  created_by: string;

  @ApiProperty({ format: 'date-time' })
  created_at: string;

  @ApiProperty({ format: 'date-time' })
  updated_at: string;
}

export class UpstreamListResponseDto {
  @ApiProperty({ type: [UpstreamResponseDto] })
  data: UpstreamResponseDto[];
}

/** A JSON-RPC 2.0 message (MCP Streamable HTTP; see the MCP specification). */
export class JsonRpcMessageDto {
  @ApiProperty({ example: '2.0' })
  jsonrpc: string;

  @ApiPropertyOptional({ oneOf: [{ type: 'string' }, { type: 'integer' }], example: 1 })
  id?: string | number;

  @ApiPropertyOptional({ example: 'tools/call' })
  method?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { name: 'github__create_issue', arguments: { title: 'Bug' } } })
  params?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  result?: Record<string, unknown>;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { code: -32602, message: 'Invalid params' } })
  error?: Record<string, unknown>;
}
