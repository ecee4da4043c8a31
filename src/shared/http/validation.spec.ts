import { nestedDeeperThan } from './validation';

function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

describe('nestedDeeperThan', () => {
  it.each([
    [null, 0, false],
    ['text', 0, false],
    [{}, 1, false],
    [{}, 0, true],
    [nest(64), 64, false],
    [nest(65), 64, true],
    [{ wide: Array.from({ length: 1000 }, () => ({ x: 1 })) }, 3, false],
  ])('%#: depth limit %p', (value, max, expected) => {
    expect(nestedDeeperThan(value, max as number)).toBe(expected);
  });

  it('does not overflow the stack on very deep input', () => {
    expect(nestedDeeperThan(nest(200_000), 64)).toBe(true);
  });
});
