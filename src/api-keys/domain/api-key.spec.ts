import { ValidationFailedError } from '../../shared/domain/domain-error';
import { APIKey, APIKeyProps, APIKeyStatus, CreateAPIKeyInput } from './api-key';
import { KeyStateError } from './api-key.errors';
import { PermissionScope } from './permission-scope';

const T0 = new Date('2025-01-01T00:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const scope = PermissionScope.parse({ mcp_tool_ids: ['github__*'] });

function input(over: Partial<CreateAPIKeyInput> = {}): CreateAPIKeyInput {
  return {
    id: 'key_1',
    tenantId: 'ten_1',
    userId: 'usr_1',
    name: 'ci',
    keyHash: 'h1',
    start: 'tg_live_abcd',
    scope,
    expiresAt: null,
    metadata: { team: 'infra' },
    createdBy: 'usr_admin',
    ...over,
  };
}

function props(over: Partial<APIKeyProps> = {}): APIKeyProps {
  return {
    ...APIKey.create(input(), T0).toProps(),
    ...over,
  };
}

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationFailedError);
    return (e as ValidationFailedError).errors.map((x) => x.field);
  }
  throw new Error('expected a ValidationFailedError');
}

describe('APIKey.create', () => {
  it('starts active, enabled, never used, stamped now', () => {
    const k = APIKey.create(input({ expiresAt: at(60), name: '  ci  ' }), T0);
    expect(k.toProps()).toEqual({
      id: 'key_1',
      tenantId: 'ten_1',
      userId: 'usr_1',
      name: 'ci',
      keyHash: 'h1',
      start: 'tg_live_abcd',
      scope,
      enabled: true,
      expiresAt: at(60),
      revokedAt: null,
      lastUsedAt: null,
      rotatedFromId: null,
      graceUntil: null,
      metadata: { team: 'infra' },
      monthlyCreditCap: null,
      createdAt: T0,
      updatedAt: T0,
      createdBy: 'usr_admin',
    });
    expect(k.status(T0)).toBe('active');
  });

  it('keeps rotatedFromId when given', () => {
    expect(APIKey.create(input({ rotatedFromId: 'key_0' }), T0).rotatedFromId).toBe('key_0');
  });

  it.each<[string, Partial<CreateAPIKeyInput>, string[]]>([
    ['empty name', { name: '' }, ['name']],
    ['blank name', { name: '   ' }, ['name']],
    ['name of 101 chars', { name: 'x'.repeat(101) }, ['name']],
    ['expiry now', { expiresAt: T0 }, ['expires_at']],
    ['expiry in the past', { expiresAt: at(-1) }, ['expires_at']],
    ['invalid date', { expiresAt: new Date('nope') }, ['expires_at']],
    ['both', { name: '', expiresAt: at(-5) }, ['name', 'expires_at']],
  ])('rejects %s', (_label, over, fields) => {
    expect(fieldsOf(() => APIKey.create(input(over), T0))).toEqual(fields);
  });

  it.each([['x'.repeat(100)], ['  ' + 'x'.repeat(100) + '  '], ['a']])('accepts the name %p', (name) => {
    expect(APIKey.create(input({ name }), T0).name).toBe(name.trim());
  });

  it('copies metadata so the caller cannot mutate it', () => {
    const meta: Record<string, unknown> = { a: 1 };
    const k = APIKey.create(input({ metadata: meta }), T0);
    meta.a = 2;
    k.metadata.a = 3;
    expect(k.metadata).toEqual({ a: 1 });
  });
});

describe('APIKey.status', () => {
  it.each<[string, Partial<APIKeyProps>, number, APIKeyStatus]>([
    ['fresh', {}, 0, 'active'],
    ['disabled', { enabled: false }, 0, 'disabled'],
    ['before expiry', { expiresAt: at(10) }, 9, 'active'],
    ['at expiry', { expiresAt: at(10) }, 10, 'expired'],
    ['after expiry', { expiresAt: at(10) }, 11, 'expired'],
    ['revoked in the future is not yet revoked', { revokedAt: at(10) }, 9, 'active'],
    ['at revocation', { revokedAt: at(10) }, 10, 'revoked'],
    ['in grace', { graceUntil: at(10) }, 9, 'active'],
    ['grace ended', { graceUntil: at(10) }, 10, 'expired'],
    ['disabled in grace', { graceUntil: at(10), enabled: false }, 9, 'disabled'],
    ['expired beats disabled', { expiresAt: at(1), enabled: false }, 5, 'expired'],
    ['grace end beats disabled', { graceUntil: at(1), enabled: false }, 5, 'expired'],
    ['revoked beats expired', { revokedAt: at(2), expiresAt: at(1) }, 5, 'revoked'],
    ['revoked beats disabled', { revokedAt: at(1), enabled: false }, 5, 'revoked'],
    ['revoked beats everything', { revokedAt: at(1), expiresAt: at(1), graceUntil: at(1), enabled: false }, 5, 'revoked'],
  ])('%s → %s', (_label, over, seconds, expected) => {
    const k = APIKey.restore(props(over));
    expect(k.status(at(seconds))).toBe(expected);
    expect(k.isLive(at(seconds))).toBe(expected === 'active' || expected === 'disabled');
  });
});

describe('APIKey verbs', () => {
  const fresh = (over: Partial<APIKeyProps> = {}) => APIKey.restore(props(over));

  it('disable then enable', () => {
    const k = fresh();
    k.disable(at(1));
    expect(k.status(at(1))).toBe('disabled');
    expect(k.updatedAt).toEqual(at(1));
    k.enable(at(2));
    expect(k.status(at(2))).toBe('active');
    expect(k.updatedAt).toEqual(at(2));
  });

  it.each<[string, Partial<APIKeyProps>]>([
    ['revoked', { revokedAt: at(1) }],
    ['expired', { expiresAt: at(1) }],
    ['past its grace', { graceUntil: at(1) }],
  ])('enable refuses a %s key and changes nothing', (_label, over) => {
    const k = fresh({ ...over, enabled: false });
    const before = k.toProps();
    expect(() => k.enable(at(5))).toThrow(KeyStateError);
    expect(k.toProps()).toEqual(before);
  });

  it('revoke is idempotent and keeps the first revokedAt', () => {
    const k = fresh();
    k.revoke(at(3));
    expect(k.revokedAt).toEqual(at(3));
    expect(k.status(at(3))).toBe('revoked');
    k.revoke(at(9));
    expect(k.revokedAt).toEqual(at(3));
    expect(k.updatedAt).toEqual(at(3));
  });

  it('rename trims and validates', () => {
    const k = fresh();
    k.rename('  deploy  ', at(1));
    expect(k.name).toBe('deploy');
    expect(k.updatedAt).toEqual(at(1));
    expect(fieldsOf(() => k.rename(' ', at(2)))).toEqual(['name']);
    expect(fieldsOf(() => k.rename('y'.repeat(101), at(2)))).toEqual(['name']);
    expect(k.name).toBe('deploy');
    expect(k.updatedAt).toEqual(at(1));
  });

  it('changeScope', () => {
    const k = fresh();
    const next = PermissionScope.empty();
    k.changeScope(next, at(4));
    expect(k.scope).toBe(next);
    expect(k.updatedAt).toEqual(at(4));
  });

  it.each<[string, number | null, boolean]>([
    ['future', 100, true],
    ['cleared', null, true],
    ['now', 5, false],
    ['past', 1, false],
  ])('changeExpiry to %s', (_label, seconds, ok) => {
    const k = fresh({ expiresAt: at(50) });
    const target = seconds === null ? null : at(seconds);
    if (ok) {
      k.changeExpiry(target, at(5));
      expect(k.expiresAt).toEqual(target);
      expect(k.updatedAt).toEqual(at(5));
    } else {
      expect(fieldsOf(() => k.changeExpiry(target, at(5)))).toEqual(['expires_at']);
      expect(k.expiresAt).toEqual(at(50));
    }
  });

  it('changeExpiry can revive a key that expired by date', () => {
    const k = fresh({ expiresAt: at(1) });
    expect(k.status(at(5))).toBe('expired');
    k.changeExpiry(at(100), at(5));
    expect(k.status(at(5))).toBe('active');
  });

  it('replaceMetadata replaces, not merges', () => {
    const k = fresh();
    k.replaceMetadata({ b: 2 }, at(6));
    expect(k.metadata).toEqual({ b: 2 });
    expect(k.updatedAt).toEqual(at(6));
  });

  it('touch sets lastUsedAt only', () => {
    const k = fresh();
    k.touch(at(7));
    expect(k.lastUsedAt).toEqual(at(7));
    expect(k.updatedAt).toEqual(T0);
  });

  it('restore/toProps round-trip', () => {
    const p = props({ lastUsedAt: at(3), rotatedFromId: 'key_0', enabled: false });
    expect(APIKey.restore(p).toProps()).toEqual(p);
  });
});

describe('APIKey.rotate', () => {
  const next = { id: 'key_2', keyHash: 'h2', start: 'tg_live_wxyz' };

  it.each<[string, boolean]>([
    ['active', true],
    ['disabled', false],
  ])('rotates a %s key: successor inherits, old key enters grace', (_label, enabled) => {
    const old = APIKey.restore(props({ enabled, expiresAt: at(1000), metadata: { m: 1 }, monthlyCreditCap: 7 }));
    const successor = old.rotate(next, 60, at(10));
    expect(old.graceUntil).toEqual(at(70));
    expect(old.updatedAt).toEqual(at(10));
    expect(old.status(at(69))).toBe(enabled ? 'active' : 'disabled');
    expect(old.status(at(70))).toBe('expired');
    expect(successor.toProps()).toEqual({
      id: 'key_2',
      tenantId: 'ten_1',
      userId: 'usr_1',
      name: 'ci',
      keyHash: 'h2',
      start: 'tg_live_wxyz',
      scope,
      enabled,
      expiresAt: at(1000),
      revokedAt: null,
      lastUsedAt: null,
      rotatedFromId: 'key_1',
      graceUntil: null,
      metadata: { m: 1 },
      monthlyCreditCap: 7,
      lineageId: 'key_1',
      createdAt: at(10),
      updatedAt: at(10),
      createdBy: 'usr_admin',
    });
  });

  it('the successor of a successor keeps the first key as its lineage (the cap counts the chain)', () => {
    const first = APIKey.restore(props());
    expect(first.lineageId).toBe('key_1');
    const second = first.rotate(next, 60, at(10));
    const third = second.rotate({ id: 'key_3', keyHash: 'h3', start: 'tg_live_abcd' }, 60, at(20));
    expect([second.lineageId, third.lineageId]).toEqual(['key_1', 'key_1']);
  });

  it('endGrace ends a running grace period only', () => {
    const old = APIKey.restore(props());
    old.rotate(next, 60, at(10));
    expect(old.inGrace(at(20))).toBe(true);
    expect(old.endGrace(at(20))).toBe(true);
    expect(old.graceUntil).toEqual(at(20));
    expect(old.status(at(20))).toBe('expired');
    expect(old.inGrace(at(20))).toBe(false);
    expect(old.endGrace(at(30))).toBe(false);
    expect(old.graceUntil).toEqual(at(20));
    expect(APIKey.restore(props()).endGrace(at(5))).toBe(false);
    const revoked = APIKey.restore(props({ graceUntil: at(100), revokedAt: at(1) }));
    expect(revoked.inGrace(at(5))).toBe(false);
  });

  it('grace 0 kills the old key immediately', () => {
    const old = APIKey.restore(props());
    old.rotate(next, 0, at(10));
    expect(old.graceUntil).toEqual(at(10));
    expect(old.status(at(10))).toBe('expired');
  });

  it.each<[string, Partial<APIKeyProps>]>([
    ['revoked', { revokedAt: at(1) }],
    ['expired', { expiresAt: at(1) }],
    ['already rotated, in grace', { graceUntil: at(100) }],
    ['already rotated, grace over', { graceUntil: at(1) }],
  ])('refuses a %s key and changes nothing', (_label, over) => {
    const k = APIKey.restore(props(over));
    const before = k.toProps();
    expect(() => k.rotate(next, 60, at(10))).toThrow(KeyStateError);
    expect(k.toProps()).toEqual(before);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('refuses grace %p', (grace) => {
    const k = APIKey.restore(props());
    expect(fieldsOf(() => k.rotate(next, grace, at(10)))).toEqual(['grace_period_seconds']);
    expect(k.graceUntil).toBeNull();
  });

  it('successor can itself be rotated', () => {
    const successor = APIKey.restore(props()).rotate(next, 0, at(10));
    const third = successor.rotate({ id: 'key_3', keyHash: 'h3', start: 'tg_live_3333' }, 5, at(20));
    expect(third.rotatedFromId).toBe('key_2');
    expect(successor.status(at(25))).toBe('expired');
  });
});

describe('APIKey monthly credit cap', () => {
  it('create takes a cap (default none) and refuses a bad one', () => {
    expect(APIKey.create(input(), T0).monthlyCreditCap).toBeNull();
    expect(APIKey.create(input({ monthlyCreditCap: 0 }), T0).monthlyCreditCap).toBe(0);
    expect(APIKey.create(input({ monthlyCreditCap: 3 }), T0).monthlyCreditCap).toBe(3);
    expect(fieldsOf(() => APIKey.create(input({ monthlyCreditCap: -1 }), T0))).toEqual(['monthly_credit_cap']);
  });

  it('changeCreditCap sets, lifts (null) and stamps updatedAt', () => {
    const k = APIKey.restore(props());
    k.changeCreditCap(5, at(10));
    expect(k.monthlyCreditCap).toBe(5);
    expect(k.updatedAt).toEqual(at(10));
    k.changeCreditCap(null, at(20));
    expect(k.monthlyCreditCap).toBeNull();
    expect(k.updatedAt).toEqual(at(20));
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3' as unknown as number])('changeCreditCap refuses %p and changes nothing', (cap) => {
    const k = APIKey.restore(props({ monthlyCreditCap: 4 }));
    const before = k.toProps();
    expect(fieldsOf(() => k.changeCreditCap(cap, at(10)))).toEqual(['monthly_credit_cap']);
    expect(k.toProps()).toEqual(before);
  });
});
