import { CallCancellation } from '../domain/call-cancellation';
import { CallCancellations } from './call-cancellations';

describe('CallCancellations (notifications/cancelled on a stateless endpoint)', () => {
  const owner = CallCancellations.ownerOf('t1', 'key-a', '10.0.0.1');

  it('cancels the one call of that owner under that id, with the reason, and only while it is registered', () => {
    const calls = new CallCancellations();
    const call = new CallCancellation();
    const unregister = calls.register(owner, 7, call);
    expect(calls.cancel(owner, 7, 'user pressed stop')).toBe(true);
    expect(call.cancelled).toBe(true);
    expect(call.reason).toBe('user pressed stop');
    unregister();
    expect(calls.size).toBe(0);
    expect(calls.cancel(owner, 7)).toBe(false);
  });

  it("never another caller's call, another tenant's, another client address's, or a request id of another type (1 is not \"1\")", () => {
    const calls = new CallCancellations();
    const call = new CallCancellation();
    calls.register(owner, 1, call);
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-b', '10.0.0.1'), 1)).toBe(false);
    expect(calls.cancel(CallCancellations.ownerOf('t2', 'key-a', '10.0.0.1'), 1)).toBe(false);
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-a', '10.0.0.2'), 1)).toBe(false);
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-a', null), 1)).toBe(false);
    expect(calls.cancel(owner, '1')).toBe(false);
    expect(call.cancelled).toBe(false);
    expect(calls.cancel(owner, 1)).toBe(true);
    expect(call.reason).toBe('cancelled by the client');
  });

  it('an id in flight twice for one owner (two clients of one key on one host) is ambiguous: nothing is cancelled until one ends', () => {
    const calls = new CallCancellations();
    const first = new CallCancellation();
    const second = new CallCancellation();
    const unregisterFirst = calls.register(owner, 3, first);
    calls.register(owner, 3, second);
    expect(calls.size).toBe(2);
    expect(calls.cancel(owner, 3)).toBe(false);
    expect(first.cancelled || second.cancelled).toBe(false);
    unregisterFirst();
    unregisterFirst(); // twice is harmless
    expect(calls.cancel(owner, 3)).toBe(true);
    expect(second.cancelled).toBe(true);
    expect(first.cancelled).toBe(false);
  });
});
