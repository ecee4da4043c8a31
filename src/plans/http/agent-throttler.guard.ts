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
 *
 * A request counts its messages (`requestHits`): a JSON-RPC batch on /mcp
 * (the SDK transport accepts up to 100 messages from 2025-03-26 clients) is
 * as many hits in the minute and hour windows as it holds requests, and as
 * many in the tool_call window as it holds `tools/call`, all in the same one
 * storage call. All or nothing: a batch larger than a window's remaining
 * allowance is refused whole (429, none of its messages served), and counts,
 * like any refused request, in the window that refused it and in no window
 * after it. A batch larger than a window's limit can never pass: the client
 * must split it. For one message this is exactly the single-hit behaviour.
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
    const hits = requestHits(req);
    const state = await this.limitHits(agent.tenantId, agent.keyId, hits, context);
    if (state.blocked) {
      const counted = state.window === 'tool_call' ? hits.toolCalls : hits.requests;
      const batch =
        counted > 1
          ? `: this JSON-RPC batch counts ${counted} and is refused whole${counted > state.limit ? ` (a batch counting more than ${state.limit} never fits: split it)` : ''}`
          : '';
      throw new HttpProblem(
        'rate_limited',
        `Rate limit of ${state.limit} requests per ${state.window} for this key (plan "${state.quotaInfo?.plan}") exceeded${batch}; retry in ${state.resetSeconds} s.`,
        { 'Retry-After': String(state.resetSeconds), 'X-RateLimit-Limit': String(state.limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(state.resetSeconds) },
        { quota_info: state.quotaInfo, window: state.window },
      );
    }
    reply.header('X-RateLimit-Limit', String(state.limit));
    reply.header('X-RateLimit-Remaining', String(state.remaining));
    reply.header('X-RateLimit-Reset', String(state.resetSeconds));
    return true;
  }

  /** One request of the key (a tool call or not) in its plan's windows: KeyRateLimiter, for /keys/verify. */
  limitKey(tenantId: string, keyId: string, toolCall: boolean): Promise<KeyRateLimitState> {
    return this.limitHits(tenantId, keyId, { requests: 1, toolCalls: toolCall ? 1 : 0 });
  }

  /**
   * Counts one HTTP request of the key, weighing `hits`, in its plan's
   * windows (all of them in one storage call) and says how it went: the
   * window that refused it, or the one with the fewest requests left (the
   * first one on a tie).
   */
  async limitHits(tenantId: string, keyId: string, hits: RequestHits, context?: ExecutionContext): Promise<KeyRateLimitState> {
    const { plan } = await this.subscriptions.planFor(tenantId);
    const windows: LimitWindow[] = [];
    // this.throttlers: the configured windows in the base guard's order (set by its onModuleInit).
    for (const throttler of this.throttlers) {
      const name = throttler.name ?? 'minute';
      let limit: number;
      let weight: number;
      if (name === 'tool_call') {
        if (plan.rateLimits.toolCallsPerMinute === undefined || hits.toolCalls === 0) continue;
        limit = plan.rateLimits.toolCallsPerMinute;
        weight = hits.toolCalls;
      } else {
        limit = name === 'hour' ? plan.rateLimits.perHour : plan.rateLimits.perMinute;
        weight = hits.requests;
      }
      if (typeof throttler.ttl === 'function' && !context) throw new Error(`throttler "${name}": a ttl computed per request needs the request`);
      const ttl = typeof throttler.ttl === 'function' ? await throttler.ttl(context as ExecutionContext) : throttler.ttl;
      // Per tenant too: an OAuth subject's key id is the same in every tenant it acts in (oauth-subject.ts),
      // and each tenant's plan limits it apart. (An API key belongs to one tenant: no change for it.)
      windows.push({ name, key: `tg:rl:${name}:key:${tenantId}:${keyId}`, ttlMs: ttl, limit, blockDurationMs: ttl, hits: weight });
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

/** What one HTTP request counts in the rate-limit windows. */
export interface RequestHits {
  /** Hits in the minute and hour windows: the JSON-RPC requests of the body, at least 1. */
  requests: number;
  /** Hits in the tool_call window: the `tools/call` messages, or 1 for the REST mirror's `/call`. */
  toolCalls: number;
}

/**
 * The counting rule. The REST mirror's `POST …/call` is one request and one
 * tool call. Any other request counts the messages of its JSON body (a
 * JSON-RPC batch, an array, or one message):
 *   - requests: the messages with a `method` and an `id` (notifications and
 *     responses expect no answer and are not counted), at least 1 per HTTP
 *     request (a GET, a lone notification, a body that is no JSON-RPC);
 *   - tool calls: the messages whose method is `tools/call` (also one without
 *     an id, which the server ignores: over-counting a malformed call is the
 *     safe side).
 * The body is already parsed (Fastify, 1 MiB at most) when guards run; a
 * batch of the SDK's maximum, 100, is walked once.
 */
export function requestHits(req: Pick<FastifyRequest, 'method' | 'url' | 'body'>): RequestHits {
  if (req.method === 'POST' && /\/call$/.test(req.url.split('?')[0])) return { requests: 1, toolCalls: 1 };
  const body = req.body as unknown;
  const messages = Array.isArray(body) ? body : [body];
  let requests = 0;
  let toolCalls = 0;
  for (const m of messages) {
    if (m === null || typeof m !== 'object') continue;
    const { method, id } = m as { method?: unknown; id?: unknown };
    if (method !== undefined && id !== undefined) requests++;
    if (method === 'tools/call') toolCalls++;
  }
  return { requests: Math.max(1, requests), toolCalls };
}
