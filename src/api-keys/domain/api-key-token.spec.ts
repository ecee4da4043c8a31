import { API_KEY_PREFIX_PATTERN, APIKeyToken, encodeChecksum } from './api-key-token';
import { crc32 } from './crc32';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A well-formed token built by hand, to test parse independently of generate. */
function build(prefix: string, env: string, random: string): string {
  const body = `${prefix}_${env}_${random}`;
  return body + encodeChecksum(crc32(body));
}

describe('APIKeyToken', () => {
  it.each<[string, 'live' | 'test']>([
    ['tg', 'live'],
    ['tg', 'test'],
    ['a', 'live'],
    ['abcdefghij012345', 'test'],
  ])('generate(%p, %p) has the documented shape and parses back', (prefix, env) => {
    const t = APIKeyToken.generate(prefix, env);
    expect(t.value).toMatch(new RegExp(`^${prefix}_${env}_[0-9A-Za-z]{38}$`));
    expect(t.prefix).toBe(prefix);
    expect(t.env).toBe(env);
    expect(t.start).toBe(t.value.slice(0, prefix.length + env.length + 2 + 4));
    expect(t.start).toMatch(new RegExp(`^${prefix}_${env}_[0-9A-Za-z]{4}$`));
    const parsed = APIKeyToken.parse(t.value);
    expect(parsed).not.toBeNull();
    expect(parsed).toMatchObject({ value: t.value, prefix, env, start: t.start });
  });

  it.each(['', 'TG', '1tg', 'tg_x', 'abcdefghij0123456', 'tg-x'])(
    'generate refuses the prefix %p',
    (prefix) => {
      expect(API_KEY_PREFIX_PATTERN.test(prefix)).toBe(false);
      expect(() => APIKeyToken.generate(prefix, 'live')).toThrow(Error);
    },
  );

  it('checksum is 6 zero-padded base62 chars', () => {
    expect(encodeChecksum(0)).toBe('000000');
    expect(encodeChecksum(61)).toBe('00000z');
    expect(encodeChecksum(62)).toBe('000010');
    expect(encodeChecksum(0xffffffff)).toBe('4gfFC3');
  });

  it('1000 generated tokens are distinct and all parse', () => {
    const values = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = APIKeyToken.generate('tg', 'live');
      expect(APIKeyToken.parse(t.value)).not.toBeNull();
      values.add(t.value);
    }
    expect(values.size).toBe(1000);
  });

  it('random characters are spread over the whole base62 alphabet', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const random = APIKeyToken.generate('tg', 'live').value.slice(8, 40);
      for (const c of random) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    // 16,000 chars / 62 ≈ 258 each; a biased or broken generator falls far outside this band.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(150);
      expect(n).toBeLessThan(380);
    }
  });

  it('rejects every single-character change in random and checksum', () => {
    const t = APIKeyToken.generate('tg', 'live').value;
    const from = 'tg_live_'.length;
    expect(t.length - from).toBe(38);
    for (let i = from; i < t.length; i++) {
      for (const replacement of [BASE62[(BASE62.indexOf(t[i]) + 1) % 62], BASE62[(BASE62.indexOf(t[i]) + 31) % 62]]) {
        const flipped = t.slice(0, i) + replacement + t.slice(i + 1);
        expect(flipped).not.toBe(t);
        expect(APIKeyToken.parse(flipped)).toBeNull();
      }
    }
  });

  it('rejects a change in prefix or env (checksum covers them)', () => {
    const t = APIKeyToken.generate('tg', 'live').value;
    expect(APIKeyToken.parse('tx' + t.slice(2))).toBeNull();
    expect(APIKeyToken.parse('tg_test' + t.slice(7))).toBeNull();
  });

  const good = build('tg', 'live', 'a'.repeat(32));
  it('the hand-built fixture parses', () => {
    expect(APIKeyToken.parse(good)?.start).toBe('tg_live_aaaa');
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['no separators', 'tglive' + 'a'.repeat(38)],
    ['upper-case prefix', build('TG', 'live', 'a'.repeat(32))],
    ['prefix starting with a digit', build('1tg', 'live', 'a'.repeat(32))],
    ['prefix too long', build('abcdefghij0123456', 'live', 'a'.repeat(32))],
    ['prefix with underscore', build('t_g', 'live', 'a'.repeat(32))],
    ['unknown env', build('tg', 'prod', 'a'.repeat(32))],
    ['random too short', build('tg', 'live', 'a'.repeat(31))],
    ['random too long', build('tg', 'live', 'a'.repeat(33))],
    ['non-base62 random', build('tg', 'live', 'a'.repeat(31) + '-')],
    ['truncated', good.slice(0, -1)],
    ['extra char', good + 'a'],
    ['leading space', ' ' + good],
    ['trailing newline', good + '\n'],
    ['bearer prefix', 'Bearer ' + good],
    ['longer than 128', 'a'.repeat(129)],
    ['huge', 'tg_live_' + 'a'.repeat(1_000_000)],
  ])('parse rejects %s', (_label, raw) => {
    expect(APIKeyToken.parse(raw)).toBeNull();
  });

  it.each([null, undefined, 42, {}])('parse never throws on %p', (raw) => {
    expect(APIKeyToken.parse(raw as unknown as string)).toBeNull();
  });
});
