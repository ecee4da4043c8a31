import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerModuleOptions,
  ThrottlerRequest,
  ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AgentPrincipal } from '../../auth/agent-principal';
import { HttpProblem } from '../../shared/http/http-problem';
import { SubscriptionsService } from '../application/subscriptions.service';
import { quotaInfo } from '../application/call-admission.service';

type AgentRequest = FastifyRequest & { agent?: AgentPrincipal; rateLimitShown?: number };

/**
 * P2 for agent routes, on @nestjs/throttler: per API key, with the limits of
 * the tenant's plan (per minute and per hour), shared through Redis when
 * configured. Runs after APIKeyAuthGuard. Every response carries the
 * X-RateLimit-* of the tightest window; a flood gets 429 `rate_limited` with
 * Retry-After and `quota_info`.
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

  protected async handleRequest({ context, ttl, throttler }: ThrottlerRequest): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AgentRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const agent = req.agent;
    if (!agent) throw new Error('AgentThrottlerGuard must run after APIKeyAuthGuard');
    const { plan } = await this.subscriptions.planFor(agent.tenantId);
    let limit: number;
    if (throttler.name === 'tool_call') {
      if (plan.rateLimits.toolCallsPerMinute === undefined || !isToolCall(req)) return true;
      limit = plan.rateLimits.toolCallsPerMinute;
    } else {
      limit = throttler.name === 'hour' ? plan.rateLimits.perHour : plan.rateLimits.perMinute;
    }
    const key = `tg:rl:${throttler.name}:key:${agent.keyId}`;
    const r = await this.storageService.increment(key, ttl, limit, ttl, throttler.name ?? 'minute');
    const remaining = Math.max(0, limit - r.totalHits);
    if (r.isBlocked) {
      const retryAfter = Math.max(1, r.timeToBlockExpire);
      const resetAt = new Date(Date.now() + retryAfter * 1000);
      throw new HttpProblem(
        'rate_limited',
        `Rate limit of ${limit} requests per ${throttler.name} for this key (plan "${plan.id}") exceeded; retry in ${retryAfter} s.`,
        { 'Retry-After': String(retryAfter), 'X-RateLimit-Limit': String(limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(retryAfter) },
        { quota_info: quotaInfo(plan, limit, Math.min(r.totalHits, limit), resetAt), window: throttler.name },
      );
    }
    // Show the window with the fewest requests left.
    if (req.rateLimitShown === undefined || remaining < req.rateLimitShown) {
      req.rateLimitShown = remaining;
      reply.header('X-RateLimit-Limit', String(limit));
      reply.header('X-RateLimit-Remaining', String(remaining));
      reply.header('X-RateLimit-Reset', String(r.timeToExpire));
    }
    return true;
  }

  protected async getTracker(req: Record<string, any>): Promise<string> {
    return (req as AgentRequest).agent?.keyId ?? String(req.ip);
  }

  protected async shouldSkip(_context: ExecutionContext): Promise<boolean> {
    return false;
  }
}

/** The expensive route: MCP `tools/call` (also inside a JSON-RPC batch) or the REST mirror's `/call`. */
function isToolCall(req: FastifyRequest): boolean {
  if (req.method === 'POST' && /\/call$/.test(req.url.split('?')[0])) return true;
  const body = req.body as unknown;
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => m !== null && typeof m === 'object' && (m as { method?: unknown }).method === 'tools/call');
}
