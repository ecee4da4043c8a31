/**
 * The caller's side of a tool call it may give up on: cancelled once, with
 * an optional reason, and one listener (the upstream connector's) told at
 * once. Hand-written instead of an AbortController/AbortSignal because every
 * tool call carries one and on Node 20 each `addEventListener` on an
 * AbortSignal costs ~5 µs of CPU (EventTarget bookkeeping; measured in
 * isolation), several per call, on a path bench S2 measures; this costs a
 * property write.
 */
export class CallCancellation {
  private cancelledWith: { reason?: string } | undefined;
  private listener: ((reason?: string) => void) | undefined;

  get cancelled(): boolean {
    return this.cancelledWith !== undefined;
  }

  /** The caller's reason, once cancelled with one. */
  get reason(): string | undefined {
    return this.cancelledWith?.reason;
  }

  /** Idempotent: only the first cancellation counts. */
  cancel(reason?: string): void {
    if (this.cancelledWith) return;
    this.cancelledWith = { reason };
    const listener = this.listener;
    this.listener = undefined;
    listener?.(reason);
  }

  /**
   * Calls `listener` when the call is cancelled (at once if it already is).
   * One listener at a time; the returned function removes it.
   */
  onCancel(listener: (reason?: string) => void): () => void {
    if (this.cancelledWith) {
      listener(this.cancelledWith.reason);
      return () => undefined;
    }
    this.listener = listener;
    return () => {
      if (this.listener === listener) this.listener = undefined;
    };
  }
}
