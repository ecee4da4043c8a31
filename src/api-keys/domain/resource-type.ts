/** The kinds of resource a permission scope can grant access to (API.md "Permission scope"). */
export const RESOURCE_TYPES = ['agent', 'flow', 'mcp_tool', 'vector_store'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export type ScopeField = 'agent_ids' | 'flow_ids' | 'mcp_tool_ids' | 'vector_store_ids';

/** The JSON list field of a permission scope that holds the patterns for each type. */
export const SCOPE_FIELDS: Record<ResourceType, ScopeField> = {
  agent: 'agent_ids',
  flow: 'flow_ids',
  mcp_tool: 'mcp_tool_ids',
  vector_store: 'vector_store_ids',
};

export function isResourceType(v: unknown): v is ResourceType {
  return typeof v === 'string' && (RESOURCE_TYPES as readonly string[]).includes(v);
}
