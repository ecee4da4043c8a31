import { Injectable } from '@nestjs/common';
import type { CallCancellation } from '../domain/call-cancellation';

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
 * another replica, or ended). A call on another replica is not found (the
 * notification is accepted and ignored, as the specification allows for an
 * unknown or finished request). MCP 2026-07-28 drops this notification over
 * HTTP: a client cancels by closing the response, which needs none of this.
 */
@Injectable()
export class CallCancellations {
  private readonly calls = new Map<string, CallCancellation[]>();

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

  /** Cancels the owner's call with this request id, when exactly one is in flight; true if it did. */
  cancel(owner: string, requestId: string | number, reason?: string): boolean {
    const entry = this.calls.get(keyOf(owner, requestId));
    if (!entry || entry.length !== 1) return false;
    entry[0].cancel(reason ?? 'cancelled by the client');
    return true;
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
