import { createHash, createHmac } from 'node:crypto';
import { KeyHasher } from './key-hasher';

const PEPPER = 'p'.repeat(16);

describe('KeyHasher', () => {
  it.each(['', 'short', 'x'.repeat(15)])('refuses the pepper %p', (pepper) => {
    expect(() => new KeyHasher(pepper)).toThrow(Error);
  });

  it('is hex HMAC-SHA256(pepper, secret)', () => {
    const h = new KeyHasher(PEPPER).hash('tg_live_secret');
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(h).toBe(createHmac('sha256', PEPPER).update('tg_live_secret').digest('hex'));
  });

  it('is deterministic per pepper and differs between peppers', () => {
    const a = new KeyHasher(PEPPER);
    const b = new KeyHasher('q'.repeat(16));
    expect(a.hash('s')).toBe(a.hash('s'));
    expect(a.hash('s')).not.toBe(b.hash('s'));
    expect(a.hash('s')).not.toBe(a.hash('t'));
  });

  it('is not a plain sha256 of the secret', () => {
    const secret = 'tg_live_secret';
    expect(new KeyHasher(PEPPER).hash(secret)).not.toBe(createHash('sha256').update(secret).digest('hex'));
  });

  it.each<[string, string, boolean]>([
    ['abc', 'abc', true],
    ['', '', true],
    ['abc', 'abd', false],
    ['abc', 'abcd', false],
    ['abcd', 'abc', false],
    ['', 'a', false],
    ['é', 'e', false],
  ])('constantTimeEquals(%p, %p) = %p', (a, b, expected) => {
    expect(KeyHasher.constantTimeEquals(a, b)).toBe(expected);
  });
});
