import { permissionScopeFromOAuth, tokenScopes } from './oauth-scope';

describe('tokenScopes', () => {
  it.each([
    ['space-separated scope string', { scope: 'openid mcp:tools  profile' }, ['openid', 'mcp:tools', 'profile']],
    ['scp array', { scp: ['mcp:tools:fake', 'x'] }, ['mcp:tools:fake', 'x']],
    ['both, deduplicated', { scope: 'a b', scp: ['b', 'c'] }, ['a', 'b', 'c']],
    ['neither', {}, []],
    ['wrong shapes grant nothing', { scope: 42, scp: { a: 1 } }, []],
    ['non-strings in scp are ignored', { scp: ['a', 3, null] }, ['a']],
  ])('%s', (_label, claims, expected) => {
    expect(tokenScopes(claims as Record<string, unknown>)).toEqual(expected);
  });
});

describe('permissionScopeFromOAuth', () => {
  it.each([
    ['mcp:tools → every tool', ['mcp:tools'], ['*']],
    ['mcp:tools wins over narrower scopes', ['mcp:tools:fake', 'mcp:tools'], ['*']],
    ['mcp:tools:<server> → <server>__*', ['mcp:tools:fake'], ['fake__*']],
    ['several servers', ['mcp:tools:fake', 'openid', 'mcp:tools:everything'], ['fake__*', 'everything__*']],
    ['a server name that is not an upstream name is ignored', ['mcp:tools:*', 'mcp:tools:Fake', 'mcp:tools:a__b', 'mcp:tools:fake'], ['fake__*']],
  ])('%s', (_label, scopes, tools) => {
    const scope = permissionScopeFromOAuth(scopes);
    expect(scope).not.toBeNull();
    expect(scope!.toJSON().mcp_tool_ids).toEqual(tools);
    expect(scope!.toJSON().agent_ids).toEqual([]);
  });

  it.each([
    ['no scope at all', []],
    ['only unrelated scopes', ['openid', 'profile', 'email']],
    ['look-alikes', ['mcp', 'mcp:tool', 'mcp:toolsx', 'mcp:tools:', 'MCP:TOOLS']],
    ['only invalid server names', ['mcp:tools:*', 'mcp:tools:../x']],
  ])('%s → null (403 insufficient_scope)', (_label, scopes) => {
    expect(permissionScopeFromOAuth(scopes)).toBeNull();
  });

  it('decides like a key scope: fake__* allows fake tools only', () => {
    const scope = permissionScopeFromOAuth(['mcp:tools:fake'])!;
    expect(scope.allows('mcp_tool', 'fake__echo')).toBe(true);
    expect(scope.allows('mcp_tool', 'fakeish__echo')).toBe(false);
    expect(scope.allows('mcp_tool', 'everything__echo')).toBe(false);
  });
});
