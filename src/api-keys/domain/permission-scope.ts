import { FieldError, ValidationFailedError } from '../../shared/domain/domain-error';
import { RESOURCE_TYPES, ResourceType, SCOPE_FIELDS, ScopeField } from './resource-type';

export interface PermissionScopeJson {
  agent_ids: string[];
  flow_ids: string[];
  mcp_tool_ids: string[];
  vector_store_ids: string[];
  deny: {
    agent_ids: string[];
    flow_ids: string[];
    mcp_tool_ids: string[];
    vector_store_ids: string[];
  };
}

export interface ScopeDecision {
  allowed: boolean;
  /** `mcp_tool_ids:everything__*`, `deny.mcp_tool_ids:everything__get-env`, or null. */
  matched_rule: string | null;
}

export class InvalidScopeError extends ValidationFailedError {
  constructor(errors: FieldError[]) {
    super(errors, 'The permission scope is invalid.');
  }
}

export const MAX_SCOPE_ENTRIES = 100;
export const MAX_PATTERN_LENGTH = 128;
const PATTERN_CHARS = /^[A-Za-z0-9_.:\-*/]+$/;
const LIST_FIELDS: readonly ScopeField[] = RESOURCE_TYPES.map((t) => SCOPE_FIELDS[t]);

/**
 * A `*`-glob compiled once at parse time into its literal pieces. Matching is a
 * greedy left-to-right indexOf walk: linear-ish, no RegExp, hence no
 * catastrophic backtracking on patterns such as `*a*a*a*a*b`, and regex
 * metacharacters (`.`) are literal by construction.
 */
class GlobPattern {
  private readonly parts: readonly string[];

  constructor(readonly source: string) {
    this.parts = source.split('*');
  }

  matches(id: string): boolean {
    const parts = this.parts;
    if (parts.length === 1) return id === this.source;
    const first = parts[0];
    const last = parts[parts.length - 1];
    if (id.length < first.length + last.length) return false;
    if (!id.startsWith(first) || !id.endsWith(last)) return false;
    let pos = first.length;
    const end = id.length - last.length;
    for (let i = 1; i < parts.length - 1; i++) {
      const mid = parts[i];
      if (mid.length === 0) continue;
      const at = id.indexOf(mid, pos);
      if (at < 0 || at + mid.length > end) return false;
      pos = at + mid.length;
    }
    return true;
  }
}

/**
 * L(inner) ⊆ L(outer) for `*`-only globs. DP over suffixes: a literal of
 * `inner` is consumed by an equal literal or a `*` of `outer`; a `*` of
 * `inner` can only be consumed by a `*` of `outer`.
 */
export function globCovers(outer: string, inner: string): boolean {
  const n = inner.length;
  const m = outer.length;
  // dp[i][j]: inner[i..] covered by outer[j..]; rows computed from the end.
  let next = new Array<boolean>(m + 1).fill(false); // row i + 1
  let cur = new Array<boolean>(m + 1).fill(false);
  for (let i = n; i >= 0; i--) {
    for (let j = m; j >= 0; j--) {
      let v: boolean;
      if (j === m) v = i === n;
      else if (outer[j] === '*') v = cur[j + 1] || (i < n && next[j]);
      else v = i < n && inner[i] !== '*' && inner[i] === outer[j] && next[j + 1];
      cur[j] = v;
    }
    [next, cur] = [cur, next];
  }
  return next[0];
}

/** Is there a string matched by both `*`-globs? DP over suffixes of both. */
export function globsIntersect(a: string, b: string): boolean {
  const n = a.length;
  const m = b.length;
  let next = new Array<boolean>(m + 1).fill(false); // row i + 1
  let cur = new Array<boolean>(m + 1).fill(false);
  for (let i = n; i >= 0; i--) {
    for (let j = m; j >= 0; j--) {
      let v: boolean;
      if (i === n && j === m) v = true;
      else if (i < n && a[i] === '*') v = next[j] || (j < m && cur[j + 1]);
      else if (j < m && b[j] === '*') v = cur[j + 1] || (i < n && next[j]);
      else v = i < n && j < m && a[i] === b[j] && next[j + 1];
      cur[j] = v;
    }
    [next, cur] = [cur, next];
  }
  return next[0];
}

interface TypeRules {
  allow: readonly GlobPattern[];
  deny: readonly GlobPattern[];
}

type Lists = Record<ScopeField, string[]>;

function emptyLists(): Lists {
  return { agent_ids: [], flow_ids: [], mcp_tool_ids: [], vector_store_ids: [] };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseLists(
  raw: Record<string, unknown>,
  prefix: string,
  allowDeny: boolean,
  errors: FieldError[],
): Lists {
  const lists = emptyLists();
  for (const key of Object.keys(raw)) {
    if ((LIST_FIELDS as readonly string[]).includes(key)) continue;
    if (allowDeny && key === 'deny') continue;
    errors.push({ field: `${prefix}.${key}`, message: 'is not a known permission scope field' });
  }
  for (const field of LIST_FIELDS) {
    const value = raw[field];
    if (value === undefined) continue;
    const path = `${prefix}.${field}`;
    if (!Array.isArray(value)) {
      errors.push({ field: path, message: 'must be an array of strings' });
      continue;
    }
    if (value.length > MAX_SCOPE_ENTRIES) {
      errors.push({ field: path, message: `must have at most ${MAX_SCOPE_ENTRIES} entries` });
      continue;
    }
    const seen = new Set<string>();
    value.forEach((entry: unknown, i) => {
      const at = `${path}[${i}]`;
      if (typeof entry !== 'string') {
        errors.push({ field: at, message: 'must be a string' });
      } else if (entry.length === 0) {
        errors.push({ field: at, message: 'must not be empty' });
      } else if (entry.length > MAX_PATTERN_LENGTH) {
        errors.push({ field: at, message: `must be at most ${MAX_PATTERN_LENGTH} characters` });
      } else if (!PATTERN_CHARS.test(entry)) {
        errors.push({ field: at, message: 'may contain only letters, digits and _ . : - * /' });
      } else if (!seen.has(entry)) {
        seen.add(entry);
        lists[field].push(entry);
      }
    });
  }
  return lists;
}

/**
 * Which agents, flows, MCP tools and vector stores a key may reach. Immutable;
 * obtain one through `parse`, `unrestricted` or `empty`.
 */
export class PermissionScope {
  private readonly rules: Record<ResourceType, TypeRules>;

  private constructor(
    private readonly allowLists: Lists,
    private readonly denyLists: Lists,
  ) {
    const rules = {} as Record<ResourceType, TypeRules>;
    for (const type of RESOURCE_TYPES) {
      const field = SCOPE_FIELDS[type];
      rules[type] = {
        allow: allowLists[field].map((p) => new GlobPattern(p)),
        deny: denyLists[field].map((p) => new GlobPattern(p)),
      };
    }
    this.rules = rules;
  }

  /** Returns a valid scope or throws InvalidScopeError listing every problem. */
  static parse(raw: unknown, fieldPrefix = 'permission_scope'): PermissionScope {
    if (!isPlainObject(raw)) {
      throw new InvalidScopeError([{ field: fieldPrefix, message: 'must be an object' }]);
    }
    const errors: FieldError[] = [];
    const allow = parseLists(raw, fieldPrefix, true, errors);
    let deny = emptyLists();
    if (raw.deny !== undefined) {
      if (isPlainObject(raw.deny)) {
        deny = parseLists(raw.deny, `${fieldPrefix}.deny`, false, errors);
      } else {
        errors.push({ field: `${fieldPrefix}.deny`, message: 'must be an object' });
      }
    }
    if (errors.length > 0) throw new InvalidScopeError(errors);
    return new PermissionScope(allow, deny);
  }

  /** `*` on every type, no denies. */
  static unrestricted(): PermissionScope {
    const allow = emptyLists();
    for (const field of LIST_FIELDS) allow[field] = ['*'];
    return new PermissionScope(allow, emptyLists());
  }

  /** No access to anything. */
  static empty(): PermissionScope {
    return new PermissionScope(emptyLists(), emptyLists());
  }

  toJSON(): PermissionScopeJson {
    return {
      agent_ids: [...this.allowLists.agent_ids],
      flow_ids: [...this.allowLists.flow_ids],
      mcp_tool_ids: [...this.allowLists.mcp_tool_ids],
      vector_store_ids: [...this.allowLists.vector_store_ids],
      deny: {
        agent_ids: [...this.denyLists.agent_ids],
        flow_ids: [...this.denyLists.flow_ids],
        mcp_tool_ids: [...this.denyLists.mcp_tool_ids],
        vector_store_ids: [...this.denyLists.vector_store_ids],
      },
    };
  }

  /** Deny wins over every allow; otherwise the first matching allow; otherwise no access. */
  decide(type: ResourceType, id: string): ScopeDecision {
    const { allow, deny } = this.rules[type];
    const field = SCOPE_FIELDS[type];
    for (const p of deny) {
      if (p.matches(id)) return { allowed: false, matched_rule: `deny.${field}:${p.source}` };
    }
    for (const p of allow) {
      if (p.matches(id)) return { allowed: true, matched_rule: `${field}:${p.source}` };
    }
    return { allowed: false, matched_rule: null };
  }

  allows(type: ResourceType, id: string): boolean {
    return this.decide(type, id).allowed;
  }

  /** True when the scope has at least one allow pattern for `type` (denies may still refuse). */
  allowsAny(type: ResourceType): boolean {
    return this.rules[type].allow.length > 0;
  }

  /**
   * Why this scope is wider than `parent`; an empty array means it is within
   * it. Every allow must be covered by one of the parent's allows, and every
   * parent deny that could hit one of our allows must stay denied here.
   */
  excessOver(parent: PermissionScope): string[] {
    const reasons: string[] = [];
    for (const type of RESOURCE_TYPES) {
      const field = SCOPE_FIELDS[type];
      const childAllow = this.allowLists[field];
      const childDeny = this.denyLists[field];
      const parentAllow = parent.allowLists[field];
      const parentDeny = parent.denyLists[field];
      for (const c of childAllow) {
        if (!parentAllow.some((p) => globCovers(p, c))) {
          reasons.push(`${field}: "${c}" is not allowed by the creator's scope`);
        }
      }
      for (const d of parentDeny) {
        if (!childAllow.some((c) => globsIntersect(c, d))) continue;
        if (!childDeny.some((cd) => globCovers(cd, d))) {
          reasons.push(`deny.${field}: must keep "${d}" denied`);
        }
      }
    }
    return reasons;
  }
}
