import { CircuitBreaker } from './circuit-breaker';

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures, fails fast during the cooldown, then lets one trial through', () => {
    const b = new CircuitBreaker(3, 1_000);
    for (let i = 0; i < 2; i++) b.failure('u', 0);
    expect(b.allow('u', 10)).toBe('pass');
    b.failure('u', 10);
    expect(b.state('u', 10)).toEqual({ state: 'open', failures: 3, retryInMs: 1_000 });
    expect(b.allow('u', 500)).toBe(false);
    expect(b.allow('u', 1_010)).toBe('trial');
    expect(b.allow('u', 1_011)).toBe(false); // only one trial at a time
    b.success('u');
    expect(b.state('u', 1_020).state).toBe('closed');
    expect(b.allow('u', 1_020)).toBe('pass');
  });

  it('a failed trial opens the circuit again for a full cooldown', () => {
    const b = new CircuitBreaker(1, 1_000);
    b.failure('u', 0);
    expect(b.allow('u', 1_000)).toBe('trial');
    b.failure('u', 1_000);
    expect(b.allow('u', 1_500)).toBe(false);
    expect(b.allow('u', 2_000)).toBe('trial');
  });

  it('a success resets the count; upstreams are independent', () => {
    const b = new CircuitBreaker(2, 1_000);
    b.failure('a', 0);
    b.success('a');
    b.failure('a', 0);
    expect(b.allow('a', 1)).toBe('pass');
    b.failure('b', 0);
    b.failure('b', 0);
    expect(b.allow('b', 1)).toBe(false);
    expect(b.allow('a', 1)).toBe('pass');
  });

  it('a trial abandoned without a verdict (refused by admission, cancelled) is handed to the next call; the circuit stays open', () => {
    const b = new CircuitBreaker(1, 1_000);
    b.failure('u', 0);
    expect(b.allow('u', 1_000)).toBe('trial'); // the trial, then e.g. quota_exceeded before it reached the upstream
    expect(b.allow('u', 1_001)).toBe(false);
    b.abandon('u');
    expect(b.state('u', 1_002).state).toBe('half_open');
    expect(b.allow('u', 1_002)).toBe('trial'); // the next trial
    b.failure('u', 1_002);
    expect(b.allow('u', 1_500)).toBe(false);
    b.abandon('closed-upstream'); // nothing to hand back: no entry is made
    expect(b.state('closed-upstream', 0)).toEqual({ state: 'closed', failures: 0, retryInMs: 0 });
  });

  it('summarises open (or half-open) and failing circuits', () => {
    const b = new CircuitBreaker(2, 1_000);
    expect(b.summary(0)).toEqual({ open: 0, failing: 0 });
    b.failure('a', 0);
    b.failure('b', 0);
    b.failure('b', 0);
    expect(b.summary(10)).toEqual({ open: 1, failing: 1 });
    expect(b.summary(2_000)).toEqual({ open: 1, failing: 1 }); // b half-open
    b.success('b');
    b.success('a');
    expect(b.summary(2_000)).toEqual({ open: 0, failing: 0 });
  });
});
