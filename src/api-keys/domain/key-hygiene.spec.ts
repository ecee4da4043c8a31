import { APIKey, APIKeyProps } from './api-key';
import { hygieneFindings } from './key-hygiene';
import { PermissionScope } from './permission-scope';

const NOW = new Date('2026-06-30T12:00:00.000Z');
const days = (d: number) => new Date(NOW.getTime() + d * 86_400_000);

function key(over: Partial<APIKeyProps> = {}): APIKey {
  const base = APIKey.create(
    { id: 'k', tenantId: 't', userId: 'u', name: 'n', keyHash: 'h', start: 'tg_live_abcd', scope: PermissionScope.parse({}), expiresAt: null, metadata: {}, createdBy: 'u' },
    days(-1),
  ).toProps();
  return APIKey.restore({ ...base, ...over });
}

describe('hygieneFindings (K10)', () => {
  const policy = { idleDays: 30, maxLifetimeDays: null };

  it('a tidy key has no finding', () => {
    expect(hygieneFindings(key({ expiresAt: days(10), monthlyCreditCap: 5, lastUsedAt: days(-2) }), NOW, policy)).toEqual([]);
  });

  it('no expiry and no cap', () => {
    expect(hygieneFindings(key(), NOW, policy)).toEqual(['never_expires', 'no_credit_cap']);
  });

  it('idle: last used before the line; never_used: never used and created before it; neither just inside it', () => {
    const tidy = { expiresAt: days(10), monthlyCreditCap: 5 };
    expect(hygieneFindings(key({ ...tidy, lastUsedAt: days(-31) }), NOW, policy)).toEqual(['idle']);
    expect(hygieneFindings(key({ ...tidy, lastUsedAt: days(-29) }), NOW, policy)).toEqual([]);
    expect(hygieneFindings(key({ ...tidy, lastUsedAt: null, createdAt: days(-31) }), NOW, policy)).toEqual(['never_used']);
    expect(hygieneFindings(key({ ...tidy, lastUsedAt: null, createdAt: days(-29) }), NOW, policy)).toEqual([]);
  });

  it('a rotated key in its grace period ends with the grace: not never_expires, lifetime counted to the grace end', () => {
    const strict = { idleDays: 30, maxLifetimeDays: 30 };
    expect(hygieneFindings(key({ monthlyCreditCap: 5, lastUsedAt: days(0), expiresAt: null, graceUntil: days(1) }), NOW, strict)).toEqual([]);
    expect(hygieneFindings(key({ monthlyCreditCap: 5, lastUsedAt: days(0), expiresAt: days(90), graceUntil: days(1) }), NOW, strict)).toEqual([]);
  });

  it("over_max_lifetime: no expiry, or an expiry further than the plan's maximum from creation", () => {
    const strict = { idleDays: 30, maxLifetimeDays: 30 };
    const created = { createdAt: days(-1), monthlyCreditCap: 5, lastUsedAt: days(0) };
    expect(hygieneFindings(key({ ...created, expiresAt: days(28) }), NOW, strict)).toEqual([]); // 29 days of life
    expect(hygieneFindings(key({ ...created, expiresAt: days(30) }), NOW, strict)).toEqual(['over_max_lifetime']); // 31 days
    expect(hygieneFindings(key({ ...created, expiresAt: null }), NOW, strict)).toEqual(['never_expires', 'over_max_lifetime']);
  });
});
