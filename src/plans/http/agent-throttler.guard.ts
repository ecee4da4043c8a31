import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, ThrottlerModuleOptions, ThrottlerStorage } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { HttpProblem } from '../../shared/http/http-problem';
import { SubscriptionsService } from '../application/subscriptions.service';
import { quotaInfo } from '../application/call-admission.service';
import { hitSequentially, isMultiWindowLimiter, LimitWindow } from '../infrastructure/multi-window-limiter';

type AgentRequest = FastifyRequest & { agent?: AgentPrincipal; rateLimitShown?: number };

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
export class AgentThrottlerGuard extends ThrottlerGuard {
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
    const { plan } = await this.subscriptions.planFor(agent.tenantId);
    const windows: LimitWindow[] = [];
    // this.throttlers: the configured windows in the base guard's order (set by its onModuleInit).
    for (const throttler of this.throttlers) {
      const name = throttler.name ?? 'minute';
      let limit: number;
      if (name === 'tool_call') {
        if (plan.rateLimits.toolCallsPerMinute === undefined || !isToolCall(req)) continue;
        limit = plan.rateLimits.toolCallsPerMinute;
      } else {
        limit = name === 'hour' ? plan.rateLimits.perHour : plan.rateLimits.perMinute;
      }
      const ttl = typeof throttler.ttl === 'function' ? await throttler.ttl(context) : throttler.ttl;
      windows.push({ name, key: `tg:rl:${name}:key:${agent.keyId}`, ttlMs: ttl, limit, blockDurationMs: ttl });
    }
    const { blockedIndex, records } = isMultiWindowLimiter(this.storageService)
      ? await this.storageService.hitAll(windows)
      : await hitSequentially(this.storageService, windows);
    for (let i = 0; i < records.length; i++) {
      const { name, limit } = windows[i];
      const r = records[i];
      if (i === blockedIndex) {
        const retryAfter = Math.max(1, r.timeToBlockExpire);
        const resetAt = new Date(Date.now() + retryAfter * 1000);
        throw new HttpProblem(
          'rate_limited',
          `Rate limit of ${limit} requests per ${name} for this key (plan "${plan.id}") exceeded; retry in ${retryAfter} s.`,
          { 'Retry-After': String(retryAfter), 'X-RateLimit-Limit': String(limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(retryAfter) },
          { quota_info: quotaInfo(plan, limit, Math.min(r.totalHits, limit), resetAt), window: name },
        );
      }
      // Show the window with the fewest requests left (the first one on a tie).
      const remaining = Math.max(0, limit - r.totalHits);
      if (req.rateLimitShown === undefined || remaining < req.rateLimitShown) {
        req.rateLimitShown = remaining;
        reply.header('X-RateLimit-Limit', String(limit));
        reply.header('X-RateLimit-Remaining', String(remaining));
        reply.header('X-RateLimit-Reset', String(r.timeToExpire));
      }
    }
    return true;
  }
}

/** The expensive route: MCP `tools/call` (also inside a JSON-RPC batch) or the REST mirror's `/call`. */
function isToolCall(req: FastifyRequest): boolean {
  if (req.method === 'POST' && /\/call$/.test(req.url.split('?')[0])) return true;
  const body = req.body as unknown;
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => m !== null && typeof m === 'object' && (m as { method?: unknown }).method === 'tools/call');
}
