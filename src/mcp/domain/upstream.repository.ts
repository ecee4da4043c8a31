import type { TransactionContext } from '../../shared/domain/unit-of-work';
import type { CallCancellation } from './call-cancellation';
import type { Upstream, UpstreamTool } from './upstream';

/** Port for registered upstreams. */
export abstract class UpstreamRepository {
  abstract listByTenant(tenantId: string): Promise<Upstream[]>;
  abstract findById(tenantId: string, id: string): Promise<Upstream | null>;
  /** Reads the row and locks it (`FOR UPDATE`) until `tx` ends: what a write in `tx` starts from. */
  abstract findByIdForUpdate(tenantId: string, id: string, tx: TransactionContext): Promise<Upstream | null>;
  /** Whether another upstream of the tenant (not `exceptId`) has this name. */
  abstract nameTaken(tenantId: string, name: string, exceptId?: string): Promise<boolean>;
  /** Throws DuplicateUpstreamNameError on a taken name. */
  abstract insert(upstream: Upstream, tx?: TransactionContext): Promise<void>;
  /** Writes the whole row; false when it no longer exists. Throws DuplicateUpstreamNameError on a taken name. */
  abstract update(upstream: Upstream, tx?: TransactionContext): Promise<boolean>;
  abstract delete(tenantId: string, id: string, tx?: TransactionContext): Promise<boolean>;
}

/** One `notifications/progress` of a tool call, without its token (each side of Tollgate has its own). */
export interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** What an MCP caller sent with its tools/call besides name and arguments (M7: passed on unchanged). */
export interface ToolCallOptions {
  /**
   * The caller's request `_meta`, without its progressToken: sent to the
   * upstream as it came (vendor keys, related-task, …).
   */
  meta?: Record<string, unknown>;
  /**
   * The caller asked for progress: the upstream call carries a progress
   * token of Tollgate's, and each progress notification the upstream sends
   * for it is handed here.
   */
  onProgress?: (progress: ToolProgress) => void;
  /**
   * Cancelled when the caller gives up (it cancelled the call, or left): the
   * upstream is sent `notifications/cancelled` for its request, and the call
   * settles at once with ToolCallCancelledError.
   */
  cancellation?: CallCancellation;
}

/** Port: speaks MCP to an upstream (pooled sessions live in the adapter). */
export abstract class UpstreamConnector {
  abstract listTools(upstream: Upstream): Promise<UpstreamTool[]>;
  /**
   * Resolves with the upstream's CallToolResult unchanged; throws UpstreamProtocolError (the upstream
   * answered a JSON-RPC error: its code, message and data), UpstreamFailureError / UpstreamTimeoutError
   * (UpstreamSessionClosedError when Tollgate dropped the session under the call), or
   * ToolCallCancelledError once `options.cancellation` is cancelled.
   */
  abstract callTool(upstream: Upstream, tool: string, args: Record<string, unknown>, options?: ToolCallOptions): Promise<Record<string, unknown>>;
  /** Drops pooled sessions of an upstream (changed or deleted). */
  abstract forget(upstreamId: string): Promise<void>;
}

/** Port: upstreams declared by the operator (UPSTREAMS_FILE), with their discovered tools. */
export abstract class OperatorUpstreamProvider {
  abstract forTenant(tenantId: string): Promise<Upstream[]>;
  abstract hasName(tenantId: string, name: string): boolean;
}
