/** A client's cancellation of one of its tool calls, as one replica tells the others. */
export interface RelayedCancellation {
  /** CallCancellations.ownerOf(tenant, caller, client address). */
  owner: string;
  /** The client's JSON-RPC request id. */
  requestId: string | number;
  reason?: string;
}

/**
 * Port: carries a client's cancellation to the other replicas, for the call it
 * names when that call is not running on the replica the notification reached
 * (/mcp is stateless: behind a load balancer, a client's notification and the
 * call it cancels may land on different replicas). Fire and forget: a
 * cancellation the other replicas never hear about lets its call complete (and
 * be charged), which the MCP specification allows.
 */
export abstract class CancellationRelay {
  /** False when nothing carries messages between replicas (no Redis): publish does nothing. */
  abstract readonly shared: boolean;

  /** To every other replica (not this one); never throws. */
  abstract publish(cancellation: RelayedCancellation): void;

  /** The one handler of cancellations published by other replicas. */
  abstract onReceive(handler: (cancellation: RelayedCancellation) => void): void;
}

/** One process, no Redis: nothing to tell. */
export class LocalCancellationRelay extends CancellationRelay {
  readonly shared = false;
  publish(): void {}
  onReceive(): void {}
}

const MAX_OWNER_LENGTH = 1_000;
const MAX_ID_LENGTH = 200;
const MAX_REASON_LENGTH = 200;

/** Whether other replicas would accept this cancellation (parseRelayedCancellation): an id over 200 characters is not relayed. */
export function isRelayable(c: RelayedCancellation): boolean {
  return c.owner.length > 0 && c.owner.length <= MAX_OWNER_LENGTH && (typeof c.requestId === 'number' || c.requestId.length <= MAX_ID_LENGTH) && (c.reason === undefined || c.reason.length <= MAX_REASON_LENGTH);
}

/** Parses a cancellation received from another replica; null when it is not one (or is this replica's own). */
export function parseRelayedCancellation(raw: string, ownOrigin: string): RelayedCancellation | null {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (m === null || typeof m !== 'object' || m.origin === ownOrigin || typeof m.origin !== 'string') return null;
  const { owner, requestId, reason } = m;
  if (typeof owner !== 'string') return null;
  if (!(typeof requestId === 'number' && Number.isFinite(requestId)) && typeof requestId !== 'string') return null;
  if (reason !== undefined && typeof reason !== 'string') return null;
  const cancellation: RelayedCancellation = { owner, requestId, ...(reason === undefined ? {} : { reason }) };
  return isRelayable(cancellation) ? cancellation : null;
}
