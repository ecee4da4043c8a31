import { Injectable, Optional } from '@nestjs/common';
import type { CallCancellation } from '../domain/call-cancellation';
import { CancellationRelay, isRelayable, LocalCancellationRelay } from '../domain/cancellation-relay';

/** What a cancellation did: stopped the call here, found two here (so none), went to the other replicas, or found nothing. */
export type CancelOutcome = 'cancelled' | 'ambiguous' | 'relayed' | 'unknown';

/**
 * The MCP tool calls in flight on this replica, by owner (tenant, caller,
 * client address) and JSON-RPC request id, so that a `notifications/cancelled`
 * finds the call it names. /mcp is stateless: the notification comes on
 * another HTTP request, served by another per-request Server, whose SDK
 * Protocol knows nothing of the call (its own `_oncancel` only sees requests
 * of the same transport).
 *
 * Request ids are the client's, and every SDK client counts from 0, so two
 * clients sharing a key reuse ids. Without sessions nothing names the client
 * for sure; the owner includes its address, so clients on other hosts never
 * stop each other's calls, and an id in flight twice for one owner is
 * ambiguous and cancels nothing (the calls complete, as without this). Two
 * clients of one key on one host can still cancel each other's call when
 * only one of them has that id in flight here (the other's call ran on
 * another replica, or ended).
 *
 * A cancellation that finds no call here is relayed to the other replicas
 * (CancellationRelay: Redis pub/sub when REDIS_URL is set), each of which
 * applies the same rule to its own calls; with nothing to relay through, or
 * when no replica runs the call (it ended, or never existed), it is ignored, as
 * the specification allows for an unknown or finished request. The rule holds
 * per replica, not across them: when two clients of one key on one host each
 * have that id in flight on a different replica, a cancellation that reaches
 * one of those replicas stops the call there, and one that reaches a third
 * replica stops both. MCP 2026-07-28 drops this notification over HTTP: a
 * client cancels by closing the response, which needs none of this.
 */
@Injectable()
export class CallCancellations {
  private readonly calls = new Map<string, CallCancellation[]>();

  constructor(@Optional() private readonly relay: CancellationRelay = new LocalCancellationRelay()) {
    // Another replica's relayed cancellation: applied here when exactly one call matches, never relayed again.
    relay.onReceive((c) => void this.cancelHere(c.owner, c.requestId, c.reason));
  }

  /** The owner of a caller's calls from one client address (`owner` below). */
  static ownerOf(tenantId: string, callerId: string, address: string | null): string {
    return `${tenantId}\n${callerId}\n${address ?? ''}`;
  }

  /** While `call` runs; the returned function unregisters it. */
  register(owner: string, requestId: string | number, call: CallCancellation): () => void {
    const key = keyOf(owner, requestId);
    const entry = this.calls.get(key);
    if (entry) entry.push(call);
    else this.calls.set(key, [call]);
    return () => {
      const current = this.calls.get(key);
      if (!current) return;
      const at = current.indexOf(call);
      if (at >= 0) current.splice(at, 1);
      if (current.length === 0) this.calls.delete(key);
    };
  }

  /**
   * A client's cancellation: cancels the owner's call with this request id when
   * exactly one is in flight here; does nothing when it is ambiguous here;
   * relays it to the other replicas when no call matches here.
   */
  cancel(owner: string, requestId: string | number, reason?: string): CancelOutcome {
    const here = this.cancelHere(owner, requestId, reason);
    if (here !== 'unknown' || !this.relay.shared) return here;
    const relayed = { owner, requestId, ...(reason === undefined ? {} : { reason }) };
    if (!isRelayable(relayed)) return here;
    this.relay.publish(relayed);
    return 'relayed';
  }

  private cancelHere(owner: string, requestId: string | number, reason?: string): CancelOutcome {
    const entry = this.calls.get(keyOf(owner, requestId));
    if (!entry) return 'unknown';
    if (entry.length !== 1) return 'ambiguous';
    entry[0].cancel(reason ?? 'cancelled by the client');
    return 'cancelled';
  }

  /** Calls registered now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const entry of this.calls.values()) n += entry.length;
    return n;
  }
}

/** The id's type is part of the key: JSON-RPC ids 1 and "1" are different requests. */
function keyOf(owner: string, requestId: string | number): string {
  return `${owner}\n${typeof requestId === 'number' ? 'n' : 's'}${requestId}`;
}
