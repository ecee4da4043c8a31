import type { TransactionContext } from '../../shared/domain/unit-of-work';

/** One metered agent request (U1). */
export interface UsageEvent {
  tenantId: string;
  keyId: string;
  userId: string;
  tool: string;
  at: Date;
  requests: number;
  tokens: number;
  credits: number;
}

/** Counters of one (tenant, key, tool, hour). */
export interface UsageCell {
  tenantId: string;
  keyId: string;
  userId: string;
  tool: string;
  bucketStart: Date;
  requests: number;
  tokens: number;
  credits: number;
}

export type Granularity = 'hour' | 'day' | 'month';

export interface UsageBucket {
  start: Date;
  requests: number;
  tokens: number;
  credits: number;
}

export interface UsageQuery {
  tenantId: string;
  from: Date;
  to: Date;
  granularity: Granularity;
  keyId?: string;
  userId?: string;
  tool?: string;
}

export function hourStart(at: Date): Date {
  const d = new Date(at.getTime());
  d.setUTCMinutes(0, 0, 0);
  return d;
}

/** Estimated tokens of a call: request and response bytes divided by 4 (U1). */
export function estimateTokens(requestBytes: number, responseBytes: number): number {
  return Math.ceil((requestBytes + responseBytes) / 4);
}

/** Port: how many tokens a tool call used (request arguments and result, as JSON text). */
export abstract class TokenCounter {
  abstract count(requestJson: string, responseJson: string): number;
}

export interface Forecast {
  limit: number;
  used: number;
  /** When the month's request quota runs out at the current rate; null if it does not this month. */
  runs_out_at: string | null;
  rate_per_hour: number;
}

/** U4: at the average rate since the month began, when does `used` reach `limit`? */
export function forecastExhaustion(used: number, limit: number, monthStart: Date, monthEnd: Date, now: Date): Forecast {
  const elapsedMs = Math.max(1, now.getTime() - monthStart.getTime());
  const ratePerMs = used / elapsedMs;
  const ratePerHour = Math.round(ratePerMs * 3_600_000 * 100) / 100;
  if (used >= limit) return { limit, used, runs_out_at: now.toISOString(), rate_per_hour: ratePerHour };
  if (ratePerMs <= 0) return { limit, used, runs_out_at: null, rate_per_hour: 0 };
  const at = new Date(now.getTime() + (limit - used) / ratePerMs);
  return { limit, used, runs_out_at: at.getTime() < monthEnd.getTime() ? at.toISOString() : null, rate_per_hour: ratePerHour };
}

/** Port: durable usage counters. */
export abstract class UsageRepository {
  /** Adds the cells to their buckets and their tokens to the month's quota counters, in one transaction. */
  abstract add(cells: UsageCell[], tx?: TransactionContext): Promise<void>;
  abstract buckets(q: UsageQuery): Promise<UsageBucket[]>;
  abstract totalsForKey(tenantId: string, keyId: string): Promise<{ requests: number; tokens: number; credits: number }>;
}
