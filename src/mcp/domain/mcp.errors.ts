import { DomainError } from '../../shared/domain/domain-error';

export class ForbiddenToolError extends DomainError {
  constructor(
    readonly tool: string,
    readonly matchedRule: string | null,
  ) {
    super('forbidden_resource', `The key's scope does not allow the tool "${tool}".`, { tool, matched_rule: matchedRule });
  }
}

export class UnknownToolError extends DomainError {
  constructor(readonly tool: string) {
    super('not_found', `No tool named "${tool}".`, { tool });
  }
}

export class UpstreamFailureError extends DomainError {
  constructor(upstream: string, reason: string) {
    super('upstream_error', `The upstream MCP server "${upstream}" failed: ${reason}`, { upstream });
  }
}

/**
 * The call ended because its upstream session was closed under it, not
 * because the upstream failed it: Tollgate dropped the session (the upstream
 * was changed or removed, or Tollgate is shutting down), or another call's
 * failure ended the session the call shared (a stdio process that stopped).
 * An upstream_error for the caller (refunded), but no verdict on the
 * upstream: it does not count against its circuit.
 */
export class UpstreamSessionClosedError extends UpstreamFailureError {
  constructor(upstream: string, reason = 'connection closed') {
    super(upstream, reason);
  }
}

export class UpstreamTimeoutError extends DomainError {
  constructor(upstream: string, timeoutMs: number) {
    super('upstream_timeout', `The upstream MCP server "${upstream}" did not answer within ${timeoutMs} ms.`, {
      upstream,
      timeout_ms: timeoutMs,
    });
  }
}

/** The upstream answered with a JSON-RPC error of its own: passed to the agent unchanged. */
export class UpstreamProtocolError extends DomainError {
  constructor(
    upstream: string,
    readonly rpcCode: number,
    readonly rpcMessage: string,
    readonly rpcData?: unknown,
  ) {
    super('upstream_error', `The upstream MCP server "${upstream}" answered with an error: ${rpcMessage}`, {
      upstream,
      upstream_error: { code: rpcCode, message: rpcMessage },
    });
  }
}

/**
 * The caller gave up on a tool call (MCP `notifications/cancelled`, or its
 * connection closed before the answer). `sent`: the upstream had the call
 * (and was told to stop), so it may have done the work; otherwise nothing
 * reached it. Not a DomainError: it never becomes a response body.
 */
export class ToolCallCancelledError extends Error {
  constructor(
    readonly reason?: string,
    readonly sent = false,
  ) {
    super(reason ? `The caller cancelled the tool call: ${reason}` : 'The caller cancelled the tool call.');
    this.name = 'ToolCallCancelledError';
  }
}
