import { RESOURCE_TYPES, SCOPE_FIELDS, isResourceType } from './resource-type';

describe('ResourceType', () => {
  it.each([
    ['agent', true],
    ['flow', true],
    ['mcp_tool', true],
    ['vector_store', true],
    ['Agent', false],
    ['mcp_tool_ids', false],
    ['', false],
    [null, false],
    [undefined, false],
    [1, false],
    [['agent'], false],
  ])('isResourceType(%p) = %p', (v, expected) => {
    expect(isResourceType(v)).toBe(expected);
  });

  it('maps every type to its <type>_ids field', () => {
    for (const t of RESOURCE_TYPES) expect(SCOPE_FIELDS[t]).toBe(`${t}_ids`);
    expect(Object.keys(SCOPE_FIELDS).sort()).toEqual([...RESOURCE_TYPES].sort());
  });
});
