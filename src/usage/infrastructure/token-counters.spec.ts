import { BytesTokenCounter, O200kTokenCounter } from './token-counters';

describe('token counters', () => {
  it('bytes: (request + response bytes) / 4, rounded up', () => {
    expect(new BytesTokenCounter().count('{"a":1}', '{"content":[]}')).toBe(Math.ceil((7 + 14) / 4));
    expect(new BytesTokenCounter().count('', '')).toBe(0);
    expect(new BytesTokenCounter().count('é', '')).toBe(1); // bytes, not characters
  });

  it('o200k: counts BPE tokens of both sides, fewer than bytes / 4 for plain English', () => {
    const text = JSON.stringify({ message: 'The quick brown fox jumps over the lazy dog.' });
    const tokens = new O200kTokenCounter().count(text, '{}');
    expect(tokens).toBeGreaterThan(5);
    expect(tokens).toBeLessThan(new BytesTokenCounter().count(text, '{}') + 5);
    expect(new O200kTokenCounter().count('', '')).toBe(0);
  });
});
