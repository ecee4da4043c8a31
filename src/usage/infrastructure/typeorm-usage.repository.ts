import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { managerOf } from '../../database/typeorm-unit-of-work';
import type { TransactionContext } from '../../shared/domain/unit-of-work';
import { UsageBucket, UsageCell, UsageQuery, UsageRepository } from '../domain/usage';

@Injectable()
export class TypeOrmUsageRepository extends UsageRepository {
  constructor(private readonly ds: DataSource) {
    super();
  }

  async add(cells: UsageCell[], tx?: TransactionContext): Promise<void> {
    if (cells.length === 0) return;
    const run = async (t: TransactionContext | undefined, m = managerOf(this.ds, t)) => {
      // One statement for all cells (unnest), sorted so concurrent flushers lock rows in the same order.
      const sorted = [...cells].sort((a, b) => `${a.tenantId}|${a.keyId}|${a.tool}|${a.bucketStart.getTime()}`.localeCompare(`${b.tenantId}|${b.keyId}|${b.tool}|${b.bucketStart.getTime()}`));
      await m.query(
        `INSERT INTO usage_buckets (tenant_id, key_id, user_id, tool, bucket_start, requests, tokens, credits)
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::bigint[], $8::bigint[])
         ON CONFLICT (tenant_id, key_id, tool, bucket_start) DO UPDATE SET
           requests = usage_buckets.requests + EXCLUDED.requests,
           tokens = usage_buckets.tokens + EXCLUDED.tokens,
           credits = usage_buckets.credits + EXCLUDED.credits`,
        [
          sorted.map((c) => c.tenantId),
          sorted.map((c) => c.keyId),
          sorted.map((c) => c.userId),
          sorted.map((c) => c.tool),
          sorted.map((c) => c.bucketStart.toISOString()),
          sorted.map((c) => c.requests),
          sorted.map((c) => c.tokens),
          sorted.map((c) => c.credits),
        ],
      );
      // Tokens count toward the month's token quota (approximate by at most one flush interval).
      const perMonth = new Map<string, { tenantId: string; period: string; tokens: number }>();
      for (const c of sorted) {
        const period = `${c.bucketStart.toISOString().slice(0, 7)}-01`;
        const k = `${c.tenantId}|${period}`;
        const e = perMonth.get(k) ?? { tenantId: c.tenantId, period, tokens: 0 };
        e.tokens += c.tokens;
        perMonth.set(k, e);
      }
      for (const e of [...perMonth.values()].sort((a, b) => `${a.tenantId}${a.period}`.localeCompare(`${b.tenantId}${b.period}`))) {
        if (e.tokens === 0) continue;
        await m.query(
          `INSERT INTO quota_counters (tenant_id, period, tokens) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, period) DO UPDATE SET tokens = quota_counters.tokens + EXCLUDED.tokens`,
          [e.tenantId, e.period, e.tokens],
        );
      }
    };
    if (tx) await run(tx);
    else await this.ds.transaction((m) => run(undefined, m));
  }

  async buckets(q: UsageQuery): Promise<UsageBucket[]> {
    const rows = await this.ds.query(
      `SELECT date_trunc($2, bucket_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start,
              sum(requests)::bigint AS requests, sum(tokens)::bigint AS tokens, sum(credits)::bigint AS credits
       FROM usage_buckets
       WHERE tenant_id = $1 AND bucket_start >= $3 AND bucket_start < $4
         AND ($5::uuid IS NULL OR key_id = $5::uuid)
         AND ($6::text IS NULL OR user_id = $6::text)
         AND ($7::text IS NULL OR tool = $7::text)
       GROUP BY 1 ORDER BY 1`,
      [q.tenantId, q.granularity, q.from, q.to, q.keyId ?? null, q.userId ?? null, q.tool ?? null],
    );
    return rows.map((r: Record<string, any>) => ({ start: new Date(r.start), requests: Number(r.requests), tokens: Number(r.tokens), credits: Number(r.credits) }));
  }

  async totalsForKey(tenantId: string, keyId: string): Promise<{ requests: number; tokens: number; credits: number }> {
    const rows = await this.ds.query(
      `SELECT coalesce(sum(requests), 0)::bigint AS requests, coalesce(sum(tokens), 0)::bigint AS tokens, coalesce(sum(credits), 0)::bigint AS credits
       FROM usage_buckets WHERE tenant_id = $1 AND key_id = $2`,
      [tenantId, keyId],
    );
    return { requests: Number(rows[0].requests), tokens: Number(rows[0].tokens), credits: Number(rows[0].credits) };
  }
}
