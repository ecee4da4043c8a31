import { Injectable } from '@nestjs/common';
import { AuthEventsRecorder } from '../../auth/auth-events.recorder';
import type { AgentPrincipal } from '../../auth/agent-principal';
import type { PermissionScope } from '../../api-keys/domain/permission-scope';
import type { RequestMeta } from '../../shared/domain/actor';
import { Metrics } from '../../observability/metrics';
import { Clock } from '../../shared/domain/clock';
import { CircuitBreaker } from '../domain/circuit-breaker';
import {
  ForbiddenToolError,
  ToolCallCancelledError,
  UnknownToolError,
  UpstreamFailureError,
  UpstreamSessionClosedError,
  UpstreamTimeoutError,
} from '../domain/mcp.errors';
import { ExposedTool, Upstream } from '../domain/upstream';
import { ToolCallOptions, UpstreamConnector } from '../domain/upstream.repository';
import { Admission, Budget, CallAdmission } from '../../plans/application/call-admission.service';
import { UsageBuffer } from '../../usage/application/usage-buffer';
import { TokenCounter } from '../../usage/domain/usage';
import { ToolCatalog } from './tool-catalog';
import { clipText } from '../../shared/domain/text';

/** `_meta` key carrying the caller's remaining budget after a call (M6). */
export const BUDGET_META_KEY = 'io.tollgate/budget';

export interface ToolCallOutcome {
  result: Record<string, unknown>;
  budget: Budget;
}

export interface ToolDecision {
  allowed: boolean;
  matchedRule: string | null;
}

/**
 * M3–M5: what an agent may see and call. MCP (`/mcp`) and the REST mirror
 * both go through `authorize()`: one decision, hidden and blocked alike.
 */
@Injectable()
export class McpGatewayService {
  /** listTools() results by scope (weak: a key's entry goes with its cached scope). */
  private readonly visibleTools = new WeakMap<PermissionScope, { tenantId: string; catalog: readonly ExposedTool[]; tools: readonly ExposedTool[] }>();

  constructor(
    private readonly catalog: ToolCatalog,
    private readonly connector: UpstreamConnector,
    /** Refusals and failures are audited off the response path (one queue, one writer). */
    private readonly offPathAudit: AuthEventsRecorder,
    private readonly admission: CallAdmission,
    private readonly usage: UsageBuffer,
    private readonly clock: Clock,
    private readonly tokens: TokenCounter,
    private readonly breaker: CircuitBreaker,
    private readonly metrics: Metrics,
  ) {}

  /** The one decision function: may this caller use the tool named `name`? */
  decide(caller: AgentPrincipal, name: string): ToolDecision {
    const d = caller.scope.decide('mcp_tool', name);
    return { allowed: d.allowed, matchedRule: d.matched_rule };
  }

  /**
   * The tools the caller may see, sorted by name. Compiled once per (catalog
   * version, scope) and reused: the catalog's sorted array changes identity
   * whenever the catalog is reloaded or invalidated, and a key's scope object
   * is immutable and replaced when the key changes, so neither can go stale.
   * The result is shared and frozen.
   */
  async listTools(caller: AgentPrincipal): Promise<readonly ExposedTool[]> {
    const catalog = await this.catalog.sorted(caller.tenantId);
    const hit = this.visibleTools.get(caller.scope);
    if (hit && hit.catalog === catalog && hit.tenantId === caller.tenantId) return hit.tools;
    const tools = Object.freeze(catalog.filter((t) => this.decide(caller, t.name).allowed));
    this.visibleTools.set(caller.scope, { tenantId: caller.tenantId, catalog, tools });
    return tools;
  }

  /** The tool, when it exists and the caller may use it; refusals are audited. */
  async authorize(caller: AgentPrincipal, name: string, request: RequestMeta): Promise<{ tool: ExposedTool; upstream: Upstream }> {
    const decision = this.decide(caller, name);
    if (!decision.allowed) {
      // Refused before any lookup: a denied caller learns nothing about which tools exist.
      this.offPathAudit.recordLater({
        tenantId: caller.tenantId,
        actor: caller.actor,
        action: 'mcp_tool.call_denied',
        target: { type: 'mcp_tool', id: clipText(name, 128) },
        outcome: 'denied',
        request,
        metadata: { key_id: caller.keyId, matched_rule: decision.matchedRule },
      });
      throw new ForbiddenToolError(name, decision.matchedRule);
    }
    const found = await this.catalog.find(caller.tenantId, name);
    if (!found) throw new UnknownToolError(name);
    return found;
  }

  /**
   * M4: authorize (scope) → admit (quota + credits, one transaction) → proxy →
   * meter. A refused call is never charged; a call the upstream did not serve
   * is released and refunded. A call its caller cancels (options.cancellation) before
   * it reaches the upstream is released too; once sent, the upstream is told
   * to stop and the call is charged, as one whose caller left: what the
   * upstream did before it stopped is unknown.
   */
  async callTool(
    caller: AgentPrincipal,
    name: string,
    args: Record<string, unknown>,
    request: RequestMeta,
    options?: ToolCallOptions,
  ): Promise<ToolCallOutcome> {
    const { tool, upstream } = await this.authorize(caller, name, request);
    // A dead upstream is not hammered, and a call that cannot be served is not admitted (nothing charged).
    const pass = this.breaker.allow(upstream.id, Date.now());
    if (!pass) {
      const s = this.breaker.state(upstream.id, Date.now());
      throw new UpstreamFailureError(upstream.name, `it failed ${s.failures} times in a row; calls resume in ${Math.ceil(s.retryInMs / 1000)} s (circuit open)`);
    }
    const cancellation = options?.cancellation;
    let admitted: Admission;
    try {
      if (cancellation?.cancelled) throw new ToolCallCancelledError(cancellation.reason);
      admitted = await this.admission.admit(caller.tenantId, caller.keyId, name, caller.monthlyCreditCap ?? null);
    } catch (err) {
      if (pass === 'trial') this.breaker.abandon(upstream.id);
      const code = (err as { code?: string }).code;
      if (code === 'quota_exceeded' || code === 'insufficient_credits' || code === 'rate_limited') this.metrics.rejected(code);
      if (code === 'quota_exceeded' || code === 'insufficient_credits') {
        this.offPathAudit.recordLater({
          tenantId: caller.tenantId,
          actor: caller.actor,
          action: 'mcp_tool.call_refused',
          target: { type: 'mcp_tool', id: name },
          outcome: 'denied',
          request,
          metadata: { key_id: caller.keyId, code },
        });
      }
      throw err;
    }
    if (cancellation?.cancelled) {
      if (pass === 'trial') this.breaker.abandon(upstream.id);
      await this.admission.release(admitted);
      throw new ToolCallCancelledError(cancellation.reason);
    }
    let result: Record<string, unknown>;
    const started = performance.now();
    try {
      result = await this.connector.callTool(upstream, tool.upstreamToolName, args, options);
      this.metrics.upstreamCall(upstream.name, (performance.now() - started) / 1000, null);
      this.breaker.success(upstream.id);
    } catch (err) {
      if (err instanceof ToolCallCancelledError) {
        if (pass === 'trial') this.breaker.abandon(upstream.id); // no verdict on the upstream
        this.metrics.upstreamCall(upstream.name, (performance.now() - started) / 1000, 'cancelled');
        // Charged once the upstream had the call; cancelled before it was sent (session set-up): released.
        if (err.sent) this.meter(caller, name, admitted, this.tokens.count(JSON.stringify(args), ''));
        else await this.admission.release(admitted);
        throw err;
      }
      // Unreachable or timed out counts against the circuit; an upstream that answered (even an error) is alive;
      // a call whose session was closed under it (dropped by Tollgate, or ended by another call's failure) says neither.
      if (err instanceof UpstreamSessionClosedError) {
        if (pass === 'trial') this.breaker.abandon(upstream.id);
      } else if (err instanceof UpstreamFailureError || err instanceof UpstreamTimeoutError) this.breaker.failure(upstream.id, Date.now());
      else this.breaker.success(upstream.id);
      this.metrics.upstreamCall(upstream.name, (performance.now() - started) / 1000, (err as { code?: string }).code ?? 'upstream_error');
      await this.admission.release(admitted);
      this.offPathAudit.recordLater({
        tenantId: caller.tenantId,
        actor: caller.actor,
        action: 'mcp_tool.call_failed',
        target: { type: 'mcp_tool', id: name },
        outcome: 'failure',
        request,
        metadata: { key_id: caller.keyId, upstream: upstream.name, code: (err as { code?: string }).code ?? 'upstream_error', refunded: admitted.price },
      });
      throw err;
    }
    const tokens = this.tokens.count(JSON.stringify(args), JSON.stringify(result));
    this.meter(caller, name, admitted, tokens);
    return { result, budget: this.admission.budget(admitted, tokens) };
  }

  private meter(caller: AgentPrincipal, name: string, admitted: Admission, tokens: number): void {
    this.usage.record({ tenantId: caller.tenantId, keyId: caller.keyId, userId: caller.userId, tool: name, at: this.clock.now(), requests: 1, tokens, credits: admitted.price });
    this.metrics.creditsCharged(admitted.price);
  }
}
