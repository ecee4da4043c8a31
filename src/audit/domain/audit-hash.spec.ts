import type { AuditEvent } from './audit-event';
import { canonicalAuditContent, canonicalJson, ChainLink, ChainVerifier, hashAuditEvent, toJsonValue } from './audit-hash';

const EVENT: AuditEvent = {
  id: '3f0c5a8e-2b1d-4c7e-9a6f-1e2d3c4b5a69',
  occurredAt: new Date('2025-11-28T09:30:00.123Z'),
  tenantId: 'acme',
  actor: { type: 'user', id: 'alice' },
  action: 'api_key.revoked',
  target: { type: 'api_key', id: 'key-1' },
  outcome: 'success',
  request: { requestId: 'req-1', ip: '203.0.113.7', userAgent: 'curl/8.5.0' },
  metadata: { z: { b: true, a: 0.5 }, a: [1, 'two', null] },
};

/** Written by hand, hashed with `printf '%s' … | sha256sum`: changing the canonical form breaks every stored chain. */
const EVENT_CANONICAL =
  '{"action":"api_key.revoked","actor":{"id":"alice","type":"user"},"id":"3f0c5a8e-2b1d-4c7e-9a6f-1e2d3c4b5a69",' +
  '"ip":"203.0.113.7","metadata":{"a":[1,"two",null],"z":{"a":0.5,"b":true}},"occurred_at":"2025-11-28T09:30:00.123Z",' +
  '"outcome":"success","prev_hash":null,"request_id":"req-1","target":{"id":"key-1","type":"api_key"},"tenant_id":"acme",' +
  '"user_agent":"curl/8.5.0"}';
const EVENT_HASH = '594549209845ec9aa16d1a3765f799c547a0b36850e9febb1a10faea42bf9cf9';

describe('canonicalJson', () => {
  it.each<[string, unknown, string]>([
    ['sorts keys at every depth', { b: 1, a: { d: 2, c: 3 } }, '{"a":{"c":3,"d":2},"b":1}'],
    ['keeps array order', [3, 1, 2], '[3,1,2]'],
    ['sorts by UTF-16 code units, not locale', { b: 1, B: 2, é: 3, _: 4 }, '{"B":2,"_":4,"b":1,"é":3}'],
    ['drops undefined members', { a: undefined, b: 1 }, '{"b":1}'],
    ['turns undefined array items into null', [undefined, 1], '[null,1]'],
    ['writes non-finite numbers as null', [NaN, Infinity], '[null,null]'],
    ['uses ECMAScript number form', [1.0, 1e21, 0.1, -0], '[1,1e+21,0.1,0]'],
    ['escapes strings as JSON does', { s: 'a"b\\c\n\u0001' }, '{"s":"a\\"b\\\\c\\n\\u0001"}'],
    ['honours toJSON (dates)', { at: new Date('2025-01-02T03:04:05.006Z') }, '{"at":"2025-01-02T03:04:05.006Z"}'],
    ['has no whitespace', { a: [1, { b: null }] }, '{"a":[1,{"b":null}]}'],
    ['writes null and booleans', [null, true, false], '[null,true,false]'],
    ['writes an empty object and array', { o: {}, a: [] }, '{"a":[],"o":{}}'],
  ])('%s', (_name, input, expected) => {
    expect(canonicalJson(input)).toBe(expected);
  });

  it('gives the same text for the same data in any key order', () => {
    expect(canonicalJson({ x: 1, y: [{ q: 1, p: 2 }] })).toBe(canonicalJson({ y: [{ p: 2, q: 1 }], x: 1 }));
  });
});

describe('toJsonValue (what jsonb gives back)', () => {
  it.each<[string, unknown, unknown]>([
    ['dates become ISO strings', { at: new Date('2025-01-02T00:00:00.000Z') }, { at: '2025-01-02T00:00:00.000Z' }],
    ['undefined members disappear', { a: undefined, b: 1 }, { b: 1 }],
    ['plain data is unchanged', { a: [1, 'x', null, { b: false }] }, { a: [1, 'x', null, { b: false }] }],
  ])('%s', (_name, input, expected) => {
    expect(toJsonValue(input)).toEqual(expected);
  });
});

describe('hashAuditEvent', () => {
  it('hashes the documented canonical form (known answer)', () => {
    expect(canonicalAuditContent(EVENT, null)).toBe(EVENT_CANONICAL);
    expect(hashAuditEvent(EVENT, null)).toBe(EVENT_HASH);
  });

  it('is lower-case hex SHA-256', () => {
    expect(hashAuditEvent(EVENT, null)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes an absent request member like a null one (NULL in the row)', () => {
    const partial = { ...EVENT, request: { requestId: 'req-1', ip: '203.0.113.7' } } as unknown as AuditEvent;
    const withNull: AuditEvent = { ...EVENT, request: { ...EVENT.request, userAgent: null } };
    expect(hashAuditEvent(partial, null)).toBe(hashAuditEvent(withNull, null));
  });

  const changes: [string, Partial<AuditEvent>][] = [
    ['id', { id: '3f0c5a8e-2b1d-4c7e-9a6f-1e2d3c4b5a6a' }],
    ['occurred_at (1 ms)', { occurredAt: new Date('2025-11-28T09:30:00.124Z') }],
    ['tenant_id', { tenantId: 'acme2' }],
    ['actor type', { actor: { type: 'service', id: 'alice' } }],
    ['actor id', { actor: { type: 'user', id: 'bob' } }],
    ['action', { action: 'api_key.created' }],
    ['target id', { target: { type: 'api_key', id: 'key-2' } }],
    ['target removed', { target: null }],
    ['outcome', { outcome: 'denied' }],
    ['ip', { request: { ...EVENT.request, ip: '203.0.113.8' } }],
    ['user_agent', { request: { ...EVENT.request, userAgent: 'curl/8.5.1' } }],
    ['request_id', { request: { ...EVENT.request, requestId: null } }],
    ['a metadata value', { metadata: { z: { b: true, a: 0.25 }, a: [1, 'two', null] } }],
    ['a metadata array order', { metadata: { z: { b: true, a: 0.5 }, a: ['two', 1, null] } }],
    ['a metadata member added', { metadata: { ...EVENT.metadata, extra: 1 } }],
  ];
  it.each(changes)('changes when %s changes', (_field, change) => {
    expect(hashAuditEvent({ ...EVENT, ...change }, null)).not.toBe(EVENT_HASH);
  });

  it('changes with prev_hash (the chain link is part of the content)', () => {
    expect(hashAuditEvent(EVENT, 'a'.repeat(64))).not.toBe(EVENT_HASH);
  });
});

describe('ChainVerifier', () => {
  function chain(n: number): ChainLink[] {
    const links: ChainLink[] = [];
    let prev: string | null = null;
    for (let i = 0; i < n; i++) {
      const event: AuditEvent = { ...EVENT, id: `00000000-0000-4000-8000-00000000000${i}`, metadata: { i } };
      const hash = hashAuditEvent(event, prev);
      links.push({ event, prevHash: prev, hash });
      prev = hash;
    }
    return links;
  }

  function run(links: ChainLink[]) {
    const v = new ChainVerifier();
    for (const l of links) if (!v.accept(l)) break;
    return { valid: v.valid, checked: v.checked, broken: v.firstBroken, head: v.headHash };
  }

  it('accepts an empty chain', () => {
    expect(run([])).toEqual({ valid: true, checked: 0, broken: null, head: null });
  });

  it('accepts an intact chain and reports its head', () => {
    const links = chain(5);
    expect(run(links)).toEqual({ valid: true, checked: 5, broken: null, head: links[4].hash });
  });

  const tampering: [string, (l: ChainLink[]) => ChainLink[], number, string][] = [
    ['content changed, hash kept', (l) => l.map((x, i) => (i === 2 ? { ...x, event: { ...x.event, metadata: { i: 99 } } } : x)), 2, 'hash_mismatch'],
    ['content changed and re-hashed', (l) => l.map((x, i) => (i === 2 ? { ...x, event: { ...x.event, metadata: { i: 99 } }, hash: hashAuditEvent({ ...x.event, metadata: { i: 99 } }, x.prevHash) } : x)), 3, 'prev_hash_mismatch'],
    ['an event deleted', (l) => l.filter((_, i) => i !== 1), 1, 'prev_hash_mismatch'],
    ['two events swapped', (l) => [l[0], l[2], l[1], l[3], l[4]], 1, 'prev_hash_mismatch'],
    ['the first event deleted', (l) => l.slice(1), 0, 'prev_hash_mismatch'],
    ['stored hash replaced', (l) => l.map((x, i) => (i === 4 ? { ...x, hash: 'f'.repeat(64) } : x)), 4, 'hash_mismatch'],
  ];
  it.each(tampering)('names the first broken event when %s', (_name, tamper, brokenIndex, reason) => {
    const original = chain(5);
    const tampered = tamper(original);
    const result = run(tampered);
    expect(result.valid).toBe(false);
    expect(result.broken).toEqual({ id: tampered[brokenIndex].event.id, reason });
    expect(result.checked).toBe(brokenIndex + 1);
    expect(result.head).toBe(brokenIndex === 0 ? null : tampered[brokenIndex - 1].hash);
  });

  it('ignores links after the break', () => {
    const links = chain(3);
    const v = new ChainVerifier();
    v.accept({ ...links[0], hash: '0'.repeat(64) });
    expect(v.accept(links[1])).toBe(false);
    expect(v.checked).toBe(1);
  });
});
