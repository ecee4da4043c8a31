import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '../../config/app-config';
import { HttpProblem } from '../../shared/http/http-problem';

/**
 * P2's anonymous tier: routes that take no credential are limited per client
 * IP, in the same storage as the per-key limits (Redis when configured), with
 * the same headers and 429 body.
 */
@Injectable()
export class AnonymousThrottlerGuard implements CanActivate {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const limit = this.config.anonymousRateLimit;
    const r = await this.storage.increment(`tg:rl:anon:${req.ip}`, 60_000, limit, 60_000, 'anonymous');
    if (r.isBlocked) {
      const retryAfter = Math.max(1, r.timeToBlockExpire);
      throw new HttpProblem(
        'rate_limited',
        `Rate limit of ${limit} requests per minute per address on public routes exceeded; retry in ${retryAfter} s.`,
        { 'Retry-After': String(retryAfter), 'X-RateLimit-Limit': String(limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(retryAfter) },
        {
          quota_info: {
            plan: 'anonymous',
            limit: limit,
            used: limit,
            remaining: 0,
            reset_at: new Date(Date.now() + retryAfter * 1000).toISOString(),
          },
        },
      );
    }
    reply.header('X-RateLimit-Limit', String(limit));
    reply.header('X-RateLimit-Remaining', String(Math.max(0, limit - r.totalHits)));
    reply.header('X-RateLimit-Reset', String(r.timeToExpire));
    return true;
  }
}
