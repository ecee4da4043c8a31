import { illFormedTextPath, nestedDeeperThan } from './validation';

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

describe('illFormedTextPath', () => {
  it.each([
    [{ name: 'ok \u{1F600}' }, null],
    [{ metadata: { a: '\ud800' } }, 'metadata.a'],
    [{ list: ['fine', 'x\udc00'] }, 'list[1]'],
    [{ ['k\ud800']: 1 }, 'k\ud800'],
    ['\ud83d', '(value)'],
    [{ n: 1, b: true, z: null }, null],
  ])('%#', (value, expected) => {
    expect(illFormedTextPath(value)).toBe(expected);
  });
});
