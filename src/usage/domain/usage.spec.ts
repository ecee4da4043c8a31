import { estimateTokens, forecastExhaustion, hourStart } from './usage';

const MARCH_START = new Date('2030-03-01T00:00:00.000Z');
const APRIL_START = new Date('2030-04-01T00:00:00.000Z');
const HOUR = 3_600_000;

describe('estimateTokens: (request bytes + response bytes) / 4, rounded up', () => {
  it.each([
    [0, 0, 0],
    [1, 0, 1],
    [0, 1, 1],
    [4, 0, 1],
    [5, 0, 2],
    [3, 5, 2],
    [3, 6, 3],
    [400, 400, 200],
    [401, 400, 201],
    [1_000_000, 3, 250_001],
  ])('%i request + %i response bytes → %i tokens', (req, res, tokens) => {
    expect(estimateTokens(req, res)).toBe(tokens);
  });
});

describe('hourStart', () => {
  it.each([
    ['2030-03-01T10:15:42.123Z', '2030-03-01T10:00:00.000Z'],
    ['2030-03-01T10:00:00.000Z', '2030-03-01T10:00:00.000Z'],
    ['2030-03-01T10:59:59.999Z', '2030-03-01T10:00:00.000Z'],
    ['2030-03-31T23:30:00.000Z', '2030-03-31T23:00:00.000Z'],
  ])('%s → %s', (at, start) => {
    expect(hourStart(new Date(at)).toISOString()).toBe(start);
  });
});

describe('forecastExhaustion: when the month quota runs out at the average rate since the month began', () => {
  it.each([
    {
      name: 'no usage yet: never, rate 0',
      used: 0, limit: 1000, now: '2030-03-11T00:00:00.000Z',
      expected: { limit: 1000, used: 0, runs_out_at: null, rate_per_hour: 0 },
    },
    {
      name: 'half used after 10 days: runs out 10 days later (inside the month)',
      used: 500, limit: 1000, now: '2030-03-11T00:00:00.000Z',
      expected: { limit: 1000, used: 500, runs_out_at: '2030-03-21T00:00:00.000Z', rate_per_hour: 2.08 },
    },
    {
      name: 'half used after 20 days: would run out in April, so not this month',
      used: 500, limit: 1000, now: '2030-03-21T00:00:00.000Z',
      expected: { limit: 1000, used: 500, runs_out_at: null, rate_per_hour: 1.04 },
    },
    {
      name: 'runs out exactly at the month end: not this month (the quota resets then)',
      used: 500, limit: 1000, now: '2030-03-16T12:00:00.000Z',
      expected: { limit: 1000, used: 500, runs_out_at: null, rate_per_hour: 1.34 },
    },
    {
      name: 'a slightly smaller quota runs out 45 minutes before the month end: this month',
      used: 500, limit: 999, now: '2030-03-16T12:00:00.000Z',
      expected: { limit: 999, used: 500, runs_out_at: '2030-03-31T23:15:21.600Z', rate_per_hour: 1.34 },
    },
    {
      name: 'quota used up: runs out now',
      used: 1000, limit: 1000, now: '2030-03-05T06:00:00.000Z',
      expected: { limit: 1000, used: 1000, runs_out_at: '2030-03-05T06:00:00.000Z', rate_per_hour: 9.8 },
    },
    {
      name: 'over the quota (tokens flushed late): runs out now',
      used: 1200, limit: 1000, now: '2030-03-02T00:00:00.000Z',
      expected: { limit: 1000, used: 1200, runs_out_at: '2030-03-02T00:00:00.000Z', rate_per_hour: 50 },
    },
    {
      name: 'a zero quota is exhausted from the start',
      used: 0, limit: 0, now: '2030-03-02T00:00:00.000Z',
      expected: { limit: 0, used: 0, runs_out_at: '2030-03-02T00:00:00.000Z', rate_per_hour: 0 },
    },
    {
      name: 'at the very first instant of the month the elapsed time is clamped to 1 ms (no division by zero)',
      used: 1, limit: 10, now: '2030-03-01T00:00:00.000Z',
      expected: { limit: 10, used: 1, runs_out_at: '2030-03-01T00:00:00.009Z', rate_per_hour: 3_600_000 },
    },
  ])('$name', ({ used, limit, now, expected }) => {
    expect(forecastExhaustion(used, limit, MARCH_START, APRIL_START, new Date(now))).toEqual(expected);
  });

  it('agrees with the linear formula now + (limit - used) × elapsed / used, to the millisecond', () => {
    const now = new Date(MARCH_START.getTime() + 11 * HOUR + 20 * 60_000);
    const elapsed = now.getTime() - MARCH_START.getTime();
    for (const [used, limit] of [[9, 100], [7, 50], [1, 2], [123, 4567]]) {
      const f = forecastExhaustion(used, limit, MARCH_START, APRIL_START, now);
      const expected = now.getTime() + ((limit - used) * elapsed) / used;
      if (expected < APRIL_START.getTime()) {
        expect(Math.abs(Date.parse(f.runs_out_at!) - expected)).toBeLessThanOrEqual(1);
      } else {
        expect(f.runs_out_at).toBeNull();
      }
      expect(f.rate_per_hour).toBeCloseTo((used / elapsed) * HOUR, 2);
    }
  });

  it.each([
    ['2030-02-14T12:00:00.000Z', '2030-02-28T00:00:00.000Z'],
    ['2030-02-15T00:00:00.000Z', null],
  ])('February (28 days) ends on March 1st: 10 of 20 used at %s → runs out at %s', (now, runsOut) => {
    const f = forecastExhaustion(10, 20, new Date('2030-02-01T00:00:00Z'), new Date('2030-03-01T00:00:00Z'), new Date(now));
    expect(f.runs_out_at).toBe(runsOut);
  });
});
