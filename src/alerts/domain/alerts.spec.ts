import { backoffSeconds, creditsLowKey, crossedQuotaThresholds, fellBelowThreshold, quotaAlertKey, quotaAlerts, quotaMonth } from './alerts';

describe('alert rules', () => {
  // A test of the state (used >= ceil(limit · pct / 100)), not of the exact step: a jump over a
  // threshold (a token flush, a plan changed below what is already used) is reached all the same.
  it.each([
    [4, 5, [80]],
    [5, 5, [80, 100]],
    [3, 5, []],
    [6, 5, [80, 100]],
    [8, 5, [80, 100]],
    [80, 100, [80]],
    [79, 100, []],
    [99, 100, [80]],
    [1, 1, [80, 100]],
    [0, 0, []],
    [5, 0, []],
    [159, 200, []],
    [160, 200, [80]],
    [450, 200, [80, 100]],
  ])('used %i of %i has reached %j', (used, limit, expected) => {
    expect(crossedQuotaThresholds(used, limit)).toEqual(expected);
  });

  it('keys a quota alert by month, metric, limit and percentage', () => {
    expect(quotaAlertKey('2025-03', 'requests', 5, 80)).toBe('quota:2025-03:requests:5:80');
    // A new plan (a new limit) alerts afresh; the same limit in the same month does not.
    expect(quotaAlertKey('2025-03', 'requests', 10, 80)).not.toBe(quotaAlertKey('2025-03', 'requests', 5, 80));
    expect(quotaAlertKey('2025-03', 'tokens', 5, 80)).not.toBe(quotaAlertKey('2025-03', 'requests', 5, 80));
    expect(quotaAlertKey('2025-04', 'requests', 5, 80)).not.toBe(quotaAlertKey('2025-03', 'requests', 5, 80));
  });

  it('lists the alerts of requests and tokens with their payloads', () => {
    expect(
      quotaAlerts('2025-03', 'pro', [
        { metric: 'requests', used: 8, limit: 5 },
        { metric: 'tokens', used: 170, limit: 200 },
      ]),
    ).toEqual([
      { dedupeKey: 'quota:2025-03:requests:5:80', payload: { plan: 'pro', metric: 'requests', percent: 80, used: 8, limit: 5, period: '2025-03' } },
      { dedupeKey: 'quota:2025-03:requests:5:100', payload: { plan: 'pro', metric: 'requests', percent: 100, used: 8, limit: 5, period: '2025-03' } },
      { dedupeKey: 'quota:2025-03:tokens:200:80', payload: { plan: 'pro', metric: 'tokens', percent: 80, used: 170, limit: 200, period: '2025-03' } },
    ]);
    expect(quotaAlerts('2025-03', 'pro', [{ metric: 'tokens', used: 10, limit: 200 }])).toEqual([]);
  });

  it.each([
    [1000, 999, 1000, true],
    [1000, 1000, 1000, false],
    [999, 998, 1000, false], // already below: alerted when it got there
    [1005, 999, 1000, true],
    [12, 11, 10, false],
  ])('balance %i → %i with threshold %i falls below: %s', (before, after, threshold, expected) => {
    expect(fellBelowThreshold(before, after, threshold)).toBe(expected);
  });

  it('keys credits.low by the latest top-up and the threshold, so only a grant or purchase re-arms it', () => {
    expect(creditsLowKey('0b9f…', 1000)).toBe('credits_low:0b9f…:1000');
    expect(creditsLowKey(null, 10)).toBe('credits_low:none:10');
    // The same top-up (refunds in between add no top-up): the same key, one alert.
    expect(creditsLowKey('a', 1000)).toBe(creditsLowKey('a', 1000));
    expect(creditsLowKey('b', 1000)).not.toBe(creditsLowKey('a', 1000));
    expect(creditsLowKey('a', 500)).not.toBe(creditsLowKey('a', 1000));
  });

  it('names the quota month in UTC', () => {
    expect(quotaMonth(new Date('2025-03-31T23:59:59Z'))).toEqual({ month: '2025-03', period: new Date('2025-03-01T00:00:00Z') });
    expect(quotaMonth(new Date('2025-04-01T00:00:00Z')).month).toBe('2025-04');
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
