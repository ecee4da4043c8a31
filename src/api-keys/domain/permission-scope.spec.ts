import { ValidationFailedError } from '../../shared/domain/domain-error';
import {
  InvalidScopeError,
  PermissionScope,
  PermissionScopeJson,
  globCovers,
  globsIntersect,
} from './permission-scope';
import { ResourceType } from './resource-type';

const scope = (raw: unknown) => PermissionScope.parse(raw);

function parseErrors(raw: unknown): InvalidScopeError {
  try {
    PermissionScope.parse(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidScopeError);
    return e as InvalidScopeError;
  }
  throw new Error('expected PermissionScope.parse to throw');
}

describe('PermissionScope.parse', () => {
  it('canonicalises: every list present, deduplicated, order kept', () => {
    const json: PermissionScopeJson = scope({
      mcp_tool_ids: ['b', 'a', 'b', '*', 'a'],
      deny: { mcp_tool_ids: ['x', 'x'] },
    }).toJSON();
    expect(json).toEqual({
      agent_ids: [],
      flow_ids: [],
      mcp_tool_ids: ['b', 'a', '*'],
      vector_store_ids: [],
      deny: { agent_ids: [], flow_ids: [], mcp_tool_ids: ['x'], vector_store_ids: [] },
    });
  });

  it('round-trips the API.md example through toJSON', () => {
    const raw = {
      mcp_tool_ids: ['everything__*'],
      agent_ids: ['agt_1'],
      flow_ids: [],
      vector_store_ids: ['*'],
      deny: { mcp_tool_ids: ['everything__get-env'] },
    };
    const once = scope(raw).toJSON();
    expect(scope(once).toJSON()).toEqual(once);
    expect(once.mcp_tool_ids).toEqual(['everything__*']);
  });

  it('toJSON returns copies that cannot mutate the scope', () => {
    const s = scope({ mcp_tool_ids: ['a'] });
    s.toJSON().mcp_tool_ids.push('*');
    expect(s.allows('mcp_tool', 'b')).toBe(false);
  });

  it.each([
    ['*'],
    ['github.*'],
    ['everything__get-env'],
    ['ns:tool/sub'],
    ['a'.repeat(128)],
  ])('accepts the pattern %p', (p) => {
    expect(scope({ mcp_tool_ids: [p] }).toJSON().mcp_tool_ids).toEqual([p]);
  });

  it('accepts exactly 100 entries', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `t${i}`);
    expect(scope({ flow_ids: ids }).toJSON().flow_ids).toHaveLength(100);
  });

  it.each<[string, unknown, string[]]>([
    ['null', null, ['permission_scope']],
    ['a string', 'mcp_tool_ids', ['permission_scope']],
    ['an array', [], ['permission_scope']],
    ['a number', 42, ['permission_scope']],
    ['unknown key', { tool_ids: ['a'] }, ['permission_scope.tool_ids']],
    ['list not an array', { mcp_tool_ids: 'a' }, ['permission_scope.mcp_tool_ids']],
    ['list null', { agent_ids: null }, ['permission_scope.agent_ids']],
    ['list an object', { flow_ids: { 0: 'a' } }, ['permission_scope.flow_ids']],
    ['non-string entry', { mcp_tool_ids: ['a', 'b', 3] }, ['permission_scope.mcp_tool_ids[2]']],
    ['null entry', { vector_store_ids: [null] }, ['permission_scope.vector_store_ids[0]']],
    ['empty string', { agent_ids: ['ok', ''] }, ['permission_scope.agent_ids[1]']],
    ['too long', { mcp_tool_ids: ['a'.repeat(129)] }, ['permission_scope.mcp_tool_ids[0]']],
    ['space', { mcp_tool_ids: ['a b'] }, ['permission_scope.mcp_tool_ids[0]']],
    ['regex chars', { mcp_tool_ids: ['a+b', '(x)'] }, ['permission_scope.mcp_tool_ids[0]', 'permission_scope.mcp_tool_ids[1]']],
    ['non-ascii', { mcp_tool_ids: ['tööl'] }, ['permission_scope.mcp_tool_ids[0]']],
    ['101 entries', { flow_ids: Array.from({ length: 101 }, (_, i) => `f${i}`) }, ['permission_scope.flow_ids']],
    ['deny not an object', { deny: ['a'] }, ['permission_scope.deny']],
    ['deny null', { deny: null }, ['permission_scope.deny']],
    ['deny unknown key', { deny: { foo: [] } }, ['permission_scope.deny.foo']],
    ['nested deny', { deny: { deny: {} } }, ['permission_scope.deny.deny']],
    ['deny bad entry', { deny: { mcp_tool_ids: ['ok', 7] } }, ['permission_scope.deny.mcp_tool_ids[1]']],
    [
      'all errors collected',
      { tool_ids: [], mcp_tool_ids: [1, ''], deny: { agent_ids: 'x', bar: 1 } },
      [
        'permission_scope.tool_ids',
        'permission_scope.mcp_tool_ids[0]',
        'permission_scope.mcp_tool_ids[1]',
        'permission_scope.deny.bar',
        'permission_scope.deny.agent_ids',
      ],
    ],
  ])('rejects %s', (_label, raw, fields) => {
    const err = parseErrors(raw);
    expect(err).toBeInstanceOf(ValidationFailedError);
    expect(err.code).toBe('validation_failed');
    expect(err.errors.map((e) => e.field)).toEqual(fields);
    for (const e of err.errors) expect(e.message).toEqual(expect.any(String));
  });

  it('uses the given field prefix', () => {
    const fields = (raw: unknown, prefix: string) => {
      try {
        PermissionScope.parse(raw, prefix);
      } catch (e) {
        return (e as InvalidScopeError).errors.map((x) => x.field);
      }
      return [];
    };
    expect(fields(null, 'scope')).toEqual(['scope']);
    expect(fields({ deny: { mcp_tool_ids: [''] } }, 'body.scope')).toEqual(['body.scope.deny.mcp_tool_ids[0]']);
  });
});

describe('PermissionScope.decide', () => {
  const example = scope({
    mcp_tool_ids: ['everything__*', 'github__issues'],
    agent_ids: ['agt_1'],
    flow_ids: [],
    vector_store_ids: ['*'],
    deny: { mcp_tool_ids: ['everything__get-env'], vector_store_ids: ['secret.*'] },
  });

  it.each<[string, ResourceType, string, boolean, string | null]>([
    ['wildcard suffix', 'mcp_tool', 'everything__echo', true, 'mcp_tool_ids:everything__*'],
    ['wildcard matches empty run', 'mcp_tool', 'everything__', true, 'mcp_tool_ids:everything__*'],
    ['deny wins over wildcard', 'mcp_tool', 'everything__get-env', false, 'deny.mcp_tool_ids:everything__get-env'],
    ['deny is whole-string', 'mcp_tool', 'everything__get-env2', true, 'mcp_tool_ids:everything__*'],
    ['exact id', 'mcp_tool', 'github__issues', true, 'mcp_tool_ids:github__issues'],
    ['exact id is whole-string', 'mcp_tool', 'github__issues_list', false, null],
    ['case-sensitive', 'mcp_tool', 'Everything__echo', false, null],
    ['not listed', 'mcp_tool', 'slack__post', false, null],
    ['exact agent', 'agent', 'agt_1', true, 'agent_ids:agt_1'],
    ['agent prefix only', 'agent', 'agt_10', false, null],
    ['empty list means no access', 'flow', 'anything', false, null],
    ['star on vector stores', 'vector_store', 'vs_9', true, 'vector_store_ids:*'],
    ['star matches empty id', 'vector_store', '', true, 'vector_store_ids:*'],
    ['deny with wildcard', 'vector_store', 'secret.keys', false, 'deny.vector_store_ids:secret.*'],
    ['dot in deny is literal', 'vector_store', 'secretXkeys', true, 'vector_store_ids:*'],
  ])('%s: %s %p', (_label, type, id, allowed, rule) => {
    expect(example.decide(type, id)).toEqual({ allowed, matched_rule: rule });
    expect(example.allows(type, id)).toBe(allowed);
  });

  it.each<[string, string, boolean]>([
    ['github.*', 'github.issues', true],
    ['github.*', 'githubXissues', false],
    ['a.b', 'a.b', true],
    ['a.b', 'aXb', false],
    ['a*b', 'ab', true],
    ['a*b', 'axxb', true],
    ['a*b', 'axxbc', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['a*b*c', 'a_c_b_c', true],
    ['*a*a*', 'aa', true],
    ['*a*a*', 'xa', false],
    ['*x', 'x', true],
    ['x*', 'x', true],
    ['**', '', true],
    ['ab*ba', 'aba', false],
    ['ab*ba', 'abba', true],
    ['*:*/*', 'ns:a/b', true],
    ['*:*/*', 'ns/a:b', false],
    ['a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000), false],
  ])('pattern %p vs id %p → %p', (pattern, id, allowed) => {
    expect(scope({ agent_ids: [pattern] }).allows('agent', id)).toBe(allowed);
  });

  it('first matching allow is reported', () => {
    const s = scope({ mcp_tool_ids: ['a*', '*', 'abc'] });
    expect(s.decide('mcp_tool', 'abc').matched_rule).toBe('mcp_tool_ids:a*');
    expect(s.decide('mcp_tool', 'zz').matched_rule).toBe('mcp_tool_ids:*');
  });

  it('deny only refuses its own type', () => {
    const s = scope({ agent_ids: ['x'], flow_ids: ['x'], deny: { agent_ids: ['x'] } });
    expect(s.allows('agent', 'x')).toBe(false);
    expect(s.allows('flow', 'x')).toBe(true);
  });

  it('unrestricted allows everything, empty allows nothing', () => {
    const u = PermissionScope.unrestricted();
    const e = PermissionScope.empty();
    for (const t of ['agent', 'flow', 'mcp_tool', 'vector_store'] as const) {
      expect(u.decide(t, 'any')).toEqual({ allowed: true, matched_rule: `${t}_ids:*` });
      expect(u.allowsAny(t)).toBe(true);
      expect(e.decide(t, 'any')).toEqual({ allowed: false, matched_rule: null });
      expect(e.allowsAny(t)).toBe(false);
    }
    expect(u.toJSON().deny.mcp_tool_ids).toEqual([]);
  });

  it.each<[unknown, ResourceType, boolean]>([
    [{ mcp_tool_ids: ['a'] }, 'mcp_tool', true],
    [{ mcp_tool_ids: ['a'] }, 'agent', false],
    [{ deny: { agent_ids: ['*'] } }, 'agent', false],
    [{ agent_ids: ['*'], deny: { agent_ids: ['*'] } }, 'agent', true],
  ])('allowsAny(%p, %p) = %p', (raw, type, expected) => {
    expect(scope(raw).allowsAny(type)).toBe(expected);
  });
});

describe('glob containment (outer ⊇ inner)', () => {
  it.each<[string, string, boolean]>([
    ['*', 'anything', true],
    ['*', '*', true],
    ['*', 'a*b*c', true],
    ['**', '*', true],
    ['github__*', 'github__issues*', true],
    ['github__*', 'github__issues', true],
    ['github__*', 'github__*', true],
    ['github__a', 'github__*', false],
    ['github__issues*', 'github__*', false],
    ['a*', 'a*b', true],
    ['a*b', 'a*', false],
    ['a*b', 'ab', true],
    ['a*b', 'a*xb', true],
    ['a*b', 'a*b*', false],
    ['*b', 'a*b', true],
    ['a*a*', 'aa*', true],
    ['a*', '*a', false],
    ['exact', 'exact', true],
    ['exact', 'exac', false],
    ['exact', 'exact2', false],
    ['a.b', 'aXb', false],
    ['abc', '*', false],
    ['', '', true],
    ['', '*', false],
  ])('covers(%p, %p) = %p', (outer, inner, expected) => {
    expect(globCovers(outer, inner)).toBe(expected);
  });
});

describe('glob intersection', () => {
  it.each<[string, string, boolean]>([
    ['*', 'x', true],
    ['a*', '*b', true],
    ['a*', 'b*', false],
    ['*a', '*b', false],
    ['github__*', 'github__issues', true],
    ['github__*', 'gitlab__*', false],
    ['everything__*', 'everything__get-env', true],
    ['a*c', 'ab*', true],
    ['a*c', 'ab', false],
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['a*b*c', '*x*', true],
    ['ab', 'a*b*', true],
    ['x', '', false],
    ['*', '', true],
  ])('intersect(%p, %p) = %p', (a, b, expected) => {
    expect(globsIntersect(a, b)).toBe(expected);
    expect(globsIntersect(b, a)).toBe(expected);
  });
});

describe('PermissionScope.excessOver', () => {
  const creator = scope({
    mcp_tool_ids: ['everything__*', 'github__issues*'],
    agent_ids: ['agt_1'],
    vector_store_ids: ['*'],
    deny: { mcp_tool_ids: ['everything__get-env'] },
  });

  it.each<[string, unknown, unknown, string[]]>([
    ['anything within unrestricted', { mcp_tool_ids: ['*'], flow_ids: ['f*'] }, 'unrestricted', []],
    ['unrestricted within unrestricted', 'unrestricted', 'unrestricted', []],
    ['empty within empty', {}, {}, []],
    ['empty within anything', {}, creator, []],
    ['unrestricted not within empty', 'unrestricted', {}, [
      'agent_ids: "*" is not allowed by the creator\'s scope',
      'flow_ids: "*" is not allowed by the creator\'s scope',
      'mcp_tool_ids: "*" is not allowed by the creator\'s scope',
      'vector_store_ids: "*" is not allowed by the creator\'s scope',
    ]],
    ['narrower glob, keeps deny', { mcp_tool_ids: ['github__issues_list*'] }, creator, []],
    ['wider glob', { mcp_tool_ids: ['github__*'] }, creator, [
      'mcp_tool_ids: "github__*" is not allowed by the creator\'s scope',
    ]],
    ['other type not granted', { flow_ids: ['f1'] }, creator, [
      'flow_ids: "f1" is not allowed by the creator\'s scope',
    ]],
    ['exact agent', { agent_ids: ['agt_1'] }, creator, []],
    ['agent wildcard', { agent_ids: ['agt_*'] }, creator, [
      'agent_ids: "agt_*" is not allowed by the creator\'s scope',
    ]],
    ['drops the creator deny', { mcp_tool_ids: ['everything__*'] }, creator, [
      'deny.mcp_tool_ids: must keep "everything__get-env" denied',
    ]],
    ['keeps the creator deny', {
      mcp_tool_ids: ['everything__*'],
      deny: { mcp_tool_ids: ['everything__get-env'] },
    }, creator, []],
    ['covers the deny with a wider deny', {
      mcp_tool_ids: ['everything__*'],
      deny: { mcp_tool_ids: ['everything__get*'] },
    }, creator, []],
    ['narrower deny does not keep it', {
      mcp_tool_ids: ['everything__*'],
      deny: { mcp_tool_ids: ['everything__get-env2'] },
    }, creator, ['deny.mcp_tool_ids: must keep "everything__get-env" denied']],
    ['deny irrelevant when allows cannot reach it', { mcp_tool_ids: ['everything__echo'] }, creator, []],
    ['exact denied id without deny', { mcp_tool_ids: ['everything__get-env'] }, creator, [
      'deny.mcp_tool_ids: must keep "everything__get-env" denied',
    ]],
    ['child deny on other type does not count', {
      mcp_tool_ids: ['everything__*'],
      deny: { agent_ids: ['everything__get-env'] },
    }, creator, ['deny.mcp_tool_ids: must keep "everything__get-env" denied']],
    ['extra child denies are fine', {
      vector_store_ids: ['*'],
      deny: { vector_store_ids: ['secret*'] },
    }, creator, []],
  ])('%s', (_label, child, parent, reasons) => {
    const toScope = (x: unknown) =>
      x === 'unrestricted' ? PermissionScope.unrestricted() : x instanceof PermissionScope ? x : scope(x);
    expect(toScope(child).excessOver(toScope(parent))).toEqual(reasons);
  });
});
