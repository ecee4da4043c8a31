import { backoffSeconds, crossedQuotaThresholds } from './alerts';

describe('alert rules', () => {
  it.each([
    [4, 5, [80]],
    [5, 5, [100]],
    [3, 5, []],
    [6, 5, []],
    [80, 100, [80]],
    [79, 100, []],
    [1, 1, [80, 100]],
    [0, 0, []],
  ])('used %i of %i crosses %j', (used, limit, expected) => {
    expect(crossedQuotaThresholds(used, limit)).toEqual(expected);
  });

  it.each([
    [1, 1],
    [2, 2],
    [3, 4],
    [8, 128],
    [20, 3600],
  ])('attempt %i waits %i s', (attempts, seconds) => {
    expect(backoffSeconds(attempts)).toBe(seconds);
  });
});
