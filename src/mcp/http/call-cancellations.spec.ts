import { CallCancellation } from '../domain/call-cancellation';
import { CancellationRelay, parseRelayedCancellation, RelayedCancellation } from '../domain/cancellation-relay';
import { CallCancellations } from './call-cancellations';

/** Two replicas' relays joined in memory, as Redis pub/sub joins them: each hears the other, never itself. */
class PairedRelay extends CancellationRelay {
  readonly shared = true;
  peer: PairedRelay | undefined;
  readonly published: RelayedCancellation[] = [];
  private handler: ((c: RelayedCancellation) => void) | undefined;
  publish(c: RelayedCancellation): void {
    this.published.push(c);
    this.peer?.handler?.(c);
  }
  onReceive(handler: (c: RelayedCancellation) => void): void {
    this.handler = handler;
  }
}

function twoReplicas(): { a: CallCancellations; b: CallCancellations; relayA: PairedRelay; relayB: PairedRelay } {
  const relayA = new PairedRelay();
  const relayB = new PairedRelay();
  relayA.peer = relayB;
  relayB.peer = relayA;
  return { a: new CallCancellations(relayA), b: new CallCancellations(relayB), relayA, relayB };
}

describe('CallCancellations (notifications/cancelled on a stateless endpoint)', () => {
  const owner = CallCancellations.ownerOf('t1', 'key-a', '10.0.0.1');

  it('cancels the one call of that owner under that id, with the reason, and only while it is registered', () => {
    const calls = new CallCancellations();
    const call = new CallCancellation();
    const unregister = calls.register(owner, 7, call);
    expect(calls.cancel(owner, 7, 'user pressed stop')).toBe('cancelled');
    expect(call.cancelled).toBe(true);
    expect(call.reason).toBe('user pressed stop');
    unregister();
    expect(calls.size).toBe(0);
    expect(calls.cancel(owner, 7)).toBe('unknown');
  });

  it("never another caller's call, another tenant's, another client address's, or a request id of another type (1 is not \"1\")", () => {
    const calls = new CallCancellations();
    const call = new CallCancellation();
    calls.register(owner, 1, call);
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-b', '10.0.0.1'), 1)).toBe('unknown');
    expect(calls.cancel(CallCancellations.ownerOf('t2', 'key-a', '10.0.0.1'), 1)).toBe('unknown');
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-a', '10.0.0.2'), 1)).toBe('unknown');
    expect(calls.cancel(CallCancellations.ownerOf('t1', 'key-a', null), 1)).toBe('unknown');
    expect(calls.cancel(owner, '1')).toBe('unknown');
    expect(call.cancelled).toBe(false);
    expect(calls.cancel(owner, 1)).toBe('cancelled');
    expect(call.reason).toBe('cancelled by the client');
  });

  it('an id in flight twice for one owner (two clients of one key on one host) is ambiguous: nothing is cancelled until one ends', () => {
    const calls = new CallCancellations();
    const first = new CallCancellation();
    const second = new CallCancellation();
    const unregisterFirst = calls.register(owner, 3, first);
    calls.register(owner, 3, second);
    expect(calls.size).toBe(2);
    expect(calls.cancel(owner, 3)).toBe('ambiguous');
    expect(first.cancelled || second.cancelled).toBe(false);
    unregisterFirst();
    unregisterFirst(); // twice is harmless
    expect(calls.cancel(owner, 3)).toBe('cancelled');
    expect(second.cancelled).toBe(true);
    expect(first.cancelled).toBe(false);
  });

  describe('across replicas (a client behind a load balancer: its call on one replica, its notification on another)', () => {
    it("a cancellation that finds no call here is relayed, and the replica that runs the call cancels it with the client's reason", () => {
      const { a, b, relayA, relayB } = twoReplicas();
      const call = new CallCancellation();
      a.register(owner, 7, call);
      expect(b.cancel(owner, 7, 'user pressed stop')).toBe('relayed');
      expect(relayB.published).toEqual([{ owner, requestId: 7, reason: 'user pressed stop' }]);
      expect(call.cancelled).toBe(true);
      expect(call.reason).toBe('user pressed stop');
      // Found where it arrived: not relayed.
      const local = new CallCancellation();
      b.register(owner, 8, local);
      expect(b.cancel(owner, 8)).toBe('cancelled');
      expect(relayB.published).toHaveLength(1);
      expect(relayA.published).toHaveLength(0); // a received cancellation is never relayed again
    });

    it('the receiving replica applies the same rules: another owner, another id type, or an ambiguous id cancels nothing there', () => {
      const { a, b } = twoReplicas();
      const first = new CallCancellation();
      const second = new CallCancellation();
      a.register(owner, 3, first);
      a.register(owner, 3, second);
      const other = new CallCancellation();
      a.register(owner, 4, other);
      expect(b.cancel(owner, 3)).toBe('relayed');
      expect(b.cancel(owner, '4')).toBe('relayed');
      expect(b.cancel(CallCancellations.ownerOf('t1', 'key-b', '10.0.0.1'), 4)).toBe('relayed');
      expect([first.cancelled, second.cancelled, other.cancelled]).toEqual([false, false, false]);
    });

    it('a received cancellation that matches nothing is dropped, never relayed again (no echo between replicas)', () => {
      const { a, b, relayA, relayB } = twoReplicas();
      expect(b.cancel(owner, 99)).toBe('relayed');
      expect(relayB.published).toHaveLength(1);
      expect(relayA.published).toHaveLength(0);
      expect(a.size).toBe(0);
    });

    it('an id longer than other replicas accept (200 characters) is not relayed', () => {
      const { a, b, relayB } = twoReplicas();
      const call = new CallCancellation();
      const long = 'r'.repeat(201);
      a.register(owner, long, call);
      expect(b.cancel(owner, long)).toBe('unknown');
      expect(relayB.published).toHaveLength(0);
      expect(b.cancel(owner, 'r'.repeat(200))).toBe('relayed');
    });

    it('an id ambiguous where the notification arrived is not relayed either', () => {
      const { a, b, relayB } = twoReplicas();
      b.register(owner, 5, new CallCancellation());
      b.register(owner, 5, new CallCancellation());
      const elsewhere = new CallCancellation();
      a.register(owner, 5, elsewhere);
      expect(b.cancel(owner, 5)).toBe('ambiguous');
      expect(relayB.published).toHaveLength(0);
      expect(elsewhere.cancelled).toBe(false);
    });
  });

  describe('parseRelayedCancellation (what a replica accepts from the channel)', () => {
    const ok = { owner, requestId: 7, reason: 'stop', origin: 'replica-b' };
    it('accepts a well-formed message of another replica, string or number ids', () => {
      expect(parseRelayedCancellation(JSON.stringify(ok), 'replica-a')).toEqual({ owner, requestId: 7, reason: 'stop' });
      expect(parseRelayedCancellation(JSON.stringify({ ...ok, requestId: 'r-1', reason: undefined }), 'replica-a')).toEqual({ owner, requestId: 'r-1' });
    });
    it.each([
      ['its own message', JSON.stringify(ok), 'replica-b'],
      ['not JSON', '{', 'replica-a'],
      ['null', 'null', 'replica-a'],
      ['no origin', JSON.stringify({ ...ok, origin: undefined }), 'replica-a'],
      ['an empty owner', JSON.stringify({ ...ok, owner: '' }), 'replica-a'],
      ['an id that is an object', JSON.stringify({ ...ok, requestId: { id: 1 } }), 'replica-a'],
      ['an over-long reason', JSON.stringify({ ...ok, reason: 'x'.repeat(201) }), 'replica-a'],
    ])('rejects %s', (_, raw, origin) => {
      expect(parseRelayedCancellation(raw, origin)).toBeNull();
    });
  });
});
