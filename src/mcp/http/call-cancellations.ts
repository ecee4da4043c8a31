import { Injectable } from '@nestjs/common';
import type { CallCancellation } from '../domain/call-cancellation';

/**
 * The MCP tool calls in flight on this replica, by caller and JSON-RPC
 * request id, so that a `notifications/cancelled` finds the call it names.
 * /mcp is stateless: the notification comes on another HTTP request, served
 * by another per-request Server, whose SDK Protocol knows nothing of the
 * call (its own `_oncancel` only sees requests of the same transport).
 *
 * Request ids are the client's: two clients sharing a key each count from 0,
 * so an id can be in flight twice for one caller. A cancellation is then
 * ambiguous and cancels nothing (the calls complete, as without it): one
 * client must never stop another's call. A call on another replica is not
 * found either (the notification is accepted and ignored, as the
 * specification allows for a request that is unknown or already finished).
 */
@Injectable()
export class CallCancellations {
  private readonly calls = new Map<string, CallCancellation[]>();

  /** While `call` runs; the returned function unregisters it. */
  register(tenantId: string, callerId: string, requestId: string | number, call: CallCancellation): () => void {
    const key = keyOf(tenantId, callerId, requestId);
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

  /** Cancels the caller's call with this request id, when exactly one is in flight; true if it did. */
  cancel(tenantId: string, callerId: string, requestId: string | number, reason?: string): boolean {
    const entry = this.calls.get(keyOf(tenantId, callerId, requestId));
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
function keyOf(tenantId: string, callerId: string, requestId: string | number): string {
  return `${tenantId}\n${callerId}\n${typeof requestId === 'number' ? 'n' : 's'}${requestId}`;
}
