import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, ThrottlerModuleOptions, ThrottlerStorage } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { HttpProblem } from '../../shared/http/http-problem';
import { SubscriptionsService } from '../application/subscriptions.service';
import { quotaInfo } from '../application/call-admission.service';
import { KeyRateLimiter, KeyRateLimitState } from '../application/key-rate-limiter';
import { hitSequentially, isMultiWindowLimiter, LimitWindow } from '../infrastructure/multi-window-limiter';

type AgentRequest = FastifyRequest & { agent?: AgentPrincipal };

/**
 * P2 for agent routes, on @nestjs/throttler: per API key, with the limits of
 * the tenant's plan (per minute and per hour, plus per minute for tool calls
 * when the plan sets it), shared through Redis when configured. Runs after
 * APIKeyAuthGuard. Every response carries the X-RateLimit-* of the tightest
 * window; a flood gets 429 `rate_limited` with Retry-After and `quota_info`.
 *
 * `canActivate` replaces the base guard's loop (one awaited storage call and
 * reflector lookups per window) with one storage call for all the windows:
 * one Redis round trip per request. The semantics are the loop's: windows in
 * the base guard's order (ThrottlerModule's, sorted by ttl: minute →
 * tool_call → hour), and the first window that blocks stops the walk, so the
 * windows after it do not count the refused request. No agent route uses
 * @Throttle/@SkipThrottle: the limits are the plan's.
 */
@Injectable()
export class AgentThrottlerGuard extends ThrottlerGuard implements KeyRateLimiter {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly subscriptions: SubscriptionsService,
  ) {
    super(options, storage, reflector);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AgentRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const agent = req.agent;
    if (!agent) throw new Error('AgentThrottlerGuard must run after APIKeyAuthGuard');
    const state = await this.limitKey(agent.tenantId, agent.keyId, isToolCall(req), context);
    if (state.blocked) {
      throw new HttpProblem(
        'rate_limited',
        `Rate limit of ${state.limit} requests per ${state.window} for this key (plan "${state.quotaInfo?.plan}") exceeded; retry in ${state.resetSeconds} s.`,
        { 'Retry-After': String(state.resetSeconds), 'X-RateLimit-Limit': String(state.limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(state.resetSeconds) },
        { quota_info: state.quotaInfo, window: state.window },
      );
    }
    reply.header('X-RateLimit-Limit', String(state.limit));
    reply.header('X-RateLimit-Remaining', String(state.remaining));
    reply.header('X-RateLimit-Reset', String(state.resetSeconds));
    return true;
  }

  /**
   * Counts one request of the key in its plan's windows (all of them in one
   * storage call) and says how it went: the window that refused it, or the
   * one with the fewest requests left (the first one on a tie).
   */
  async limitKey(tenantId: string, keyId: string, toolCall: boolean, context?: ExecutionContext): Promise<KeyRateLimitState> {
    const { plan } = await this.subscriptions.planFor(tenantId);
    const windows: LimitWindow[] = [];
    // this.throttlers: the configured windows in the base guard's order (set by its onModuleInit).
    for (const throttler of this.throttlers) {
      const name = throttler.name ?? 'minute';
      let limit: number;
      if (name === 'tool_call') {
        if (plan.rateLimits.toolCallsPerMinute === undefined || !toolCall) continue;
        limit = plan.rateLimits.toolCallsPerMinute;
      } else {
        limit = name === 'hour' ? plan.rateLimits.perHour : plan.rateLimits.perMinute;
      }
      if (typeof throttler.ttl === 'function' && !context) throw new Error(`throttler "${name}": a ttl computed per request needs the request`);
      const ttl = typeof throttler.ttl === 'function' ? await throttler.ttl(context as ExecutionContext) : throttler.ttl;
      // Per tenant too: an OAuth subject's key id is the same in every tenant it acts in (oauth-subject.ts),
      // and each tenant's plan limits it apart. (An API key belongs to one tenant: no change for it.)
      windows.push({ name, key: `tg:rl:${name}:key:${tenantId}:${keyId}`, ttlMs: ttl, limit, blockDurationMs: ttl });
    }
    const { blockedIndex, records } = isMultiWindowLimiter(this.storageService)
      ? await this.storageService.hitAll(windows)
      : await hitSequentially(this.storageService, windows);
    let shown: KeyRateLimitState | null = null;
    for (let i = 0; i < records.length; i++) {
      const { name, limit } = windows[i];
      const r = records[i];
      if (i === blockedIndex) {
        const retryAfter = Math.max(1, r.timeToBlockExpire);
        const resetAt = new Date(Date.now() + retryAfter * 1000);
        return { blocked: true, window: name, limit, remaining: 0, resetSeconds: retryAfter, quotaInfo: quotaInfo(plan, limit, Math.min(r.totalHits, limit), resetAt) };
      }
      const remaining = Math.max(0, limit - r.totalHits);
      if (shown === null || remaining < shown.remaining) shown = { blocked: false, window: name, limit, remaining, resetSeconds: r.timeToExpire };
    }
    if (!shown) throw new Error('no rate-limit window is configured');
    return shown;
  }
}

/** The expensive route: MCP `tools/call` (also inside a JSON-RPC batch) or the REST mirror's `/call`. */
function isToolCall(req: FastifyRequest): boolean {
  if (req.method === 'POST' && /\/call$/.test(req.url.split('?')[0])) return true;
  const body = req.body as unknown;
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => m !== null && typeof m === 'object' && (m as { method?: unknown }).method === 'tools/call');
}
