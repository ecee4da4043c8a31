import type { AuditEvent, ChainedAuditEvent, StoredAuditEvent } from '../domain/audit-event';
import { hashAuditEvent } from '../domain/audit-hash';
import { AuditLogFilter, AuditLogRepository, SeqWindow } from '../domain/audit-log.repository';
import { AuditLogService, decodeCursor, encodeCursor } from './audit-log.service';

/** In-memory port: one global seq, per-tenant chains, the adapter's filter semantics. */
class InMemoryAuditLog extends AuditLogRepository {
  rows: StoredAuditEvent[] = [];
  pageCalls = 0;
  private seq = 0;

  append(event: AuditEvent): Promise<ChainedAuditEvent> {
    const prev = [...this.rows].reverse().find((r) => r.tenantId === event.tenantId);
    const prevHash = prev?.hash ?? null;
    const stored = { ...event, prevHash, hash: hashAuditEvent(event, prevHash), seq: String(++this.seq) };
    this.rows.push(stored);
    return Promise.resolve(stored);
  }
  listForTarget(tenantId: string, targetId: string): Promise<AuditEvent[]> {
    return Promise.resolve(this.rows.filter((r) => r.tenantId === tenantId && r.target?.id === targetId));
  }
  findById(tenantId: string, id: string): Promise<StoredAuditEvent | null> {
    return Promise.resolve(this.rows.find((r) => r.tenantId === tenantId && r.id === id) ?? null);
  }
  page(f: AuditLogFilter, w: SeqWindow, order: 'asc' | 'desc', limit: number): Promise<StoredAuditEvent[]> {
    this.pageCalls += 1;
    const n = (s: string) => Number(s);
    const out = this.rows.filter(
      (r) =>
        r.tenantId === f.tenantId &&
        (f.action === undefined || (f.action.endsWith('.*') ? r.action.startsWith(f.action.slice(0, -1)) : r.action === f.action)) &&
        (f.actorId === undefined || r.actor.id === f.actorId) &&
        (f.targetId === undefined || r.target?.id === f.targetId) &&
        (f.outcome === undefined || r.outcome === f.outcome) &&
        (f.from === undefined || r.occurredAt >= f.from) &&
        (f.to === undefined || r.occurredAt < f.to) &&
        (w.before === undefined || n(r.seq) < n(w.before)) &&
        (w.after === undefined || n(r.seq) > n(w.after)) &&
        (w.upTo === undefined || n(r.seq) <= n(w.upTo)),
    );
    if (order === 'desc') out.reverse();
    return Promise.resolve(out.slice(0, limit));
  }
  headSeq(tenantId: string): Promise<string | null> {
    return Promise.resolve([...this.rows].reverse().find((r) => r.tenantId === tenantId)?.seq ?? null);
  }
}

let counter = 0;
function event(tenantId: string, over: Partial<AuditEvent> = {}): AuditEvent {
  counter += 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    occurredAt: new Date(Date.UTC(2025, 10, 28, 0, 0, counter)),
    tenantId,
    actor: { type: 'user', id: 'alice' },
    action: 'api_key.created',
    target: { type: 'api_key', id: `key-${counter}` },
    outcome: 'success',
    request: { requestId: null, ip: null, userAgent: null },
    metadata: { n: counter },
    ...over,
  };
}

async function seed(log: InMemoryAuditLog, tenantId: string, n: number): Promise<StoredAuditEvent[]> {
  const out: StoredAuditEvent[] = [];
  for (let i = 0; i < n; i++) out.push((await log.append(event(tenantId))) as StoredAuditEvent);
  return out;
}

describe('AuditLogService', () => {
  let log: InMemoryAuditLog;
  let service: AuditLogService;
  beforeEach(() => {
    log = new InMemoryAuditLog();
    service = new AuditLogService(log);
  });

  describe('list', () => {
    it('walks newest first, each event exactly once, with appends between pages (they are newer than the walk)', async () => {
      const seeded = await seed(log, 'acme', 7);
      await seed(log, 'other', 3);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await service.list('acme', {}, 2, cursor);
        expect(page.data.length).toBeLessThanOrEqual(2);
        seen.push(...page.data.map((e) => e.id));
        await log.append(event('acme'));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual(seeded.map((e) => e.id).reverse());
    });

    it('returns no cursor on the last page', async () => {
      await seed(log, 'acme', 2);
      expect((await service.list('acme', {}, 2)).nextCursor).toBeNull();
      expect((await service.list('acme', {}, 1)).nextCursor).not.toBeNull();
    });

    it.each(['garbage', encodeCursor('0'), encodeCursor('-1'), encodeCursor('99999999999999999999'), Buffer.from('{"seq":12}').toString('base64url'), 'x'.repeat(101)])(
      'refuses the cursor %s with validation_failed',
      async (cursor) => {
        await expect(service.list('acme', {}, 2, cursor)).rejects.toMatchObject({ code: 'validation_failed' });
      },
    );

    it('round-trips a cursor', () => {
      expect(decodeCursor(encodeCursor('9223372036854775807'))).toBe('9223372036854775807');
    });

    it('refuses a range whose end is not after its start', async () => {
      const at = new Date('2025-11-28T00:00:00Z');
      await expect(service.list('acme', { from: at, to: at }, 10)).rejects.toMatchObject({ code: 'validation_failed' });
    });
  });

  describe('get', () => {
    it.each([
      ['another tenant', 'other'],
      ['a non-uuid', 'not-a-uuid'],
    ])('is not_found for %s', async (_name, which) => {
      const [mine] = await seed(log, 'acme', 1);
      const [theirs] = await seed(log, 'other', 1);
      const id = which === 'other' ? theirs.id : which;
      await expect(service.get('acme', id)).rejects.toMatchObject({ code: 'not_found' });
      await expect(service.get('acme', mine.id)).resolves.toMatchObject({ id: mine.id });
    });
  });

  describe('export', () => {
    it('yields every matching event oldest first, a page at a time, frozen at the head when it started', async () => {
      const seeded = await seed(log, 'acme', 7);
      const events = await service.export('acme', {}, 3);
      await log.append(event('acme')); // after the export started: not part of it
      const ids: string[] = [];
      for await (const e of events) ids.push(e.id);
      expect(ids).toEqual(seeded.map((e) => e.id));
      expect(log.pageCalls).toBe(3); // 3 + 3 + 1: never the whole log at once
    });

    it('applies the filters', async () => {
      await seed(log, 'acme', 2);
      const denied = await log.append(event('acme', { outcome: 'denied' }));
      const ids: string[] = [];
      for await (const e of await service.export('acme', { outcome: 'denied' })) ids.push(e.id);
      expect(ids).toEqual([denied.id]);
    });
  });

  describe('verify', () => {
    it('is valid for an intact chain across pages and checks each event', async () => {
      const seeded = await seed(log, 'acme', 7);
      await seed(log, 'other', 2);
      await expect(service.verify('acme', 3)).resolves.toEqual({
        valid: true,
        checked: 7,
        firstBrokenId: null,
        headHash: seeded[6].hash,
      });
    });

    it('is valid and empty for a tenant without events', async () => {
      await expect(service.verify('nobody')).resolves.toEqual({ valid: true, checked: 0, firstBrokenId: null, headHash: null });
    });

    it('names the first altered event', async () => {
      const seeded = await seed(log, 'acme', 7);
      log.rows[4] = { ...log.rows[4], metadata: { n: 'altered' } };
      await expect(service.verify('acme', 3)).resolves.toEqual({
        valid: false,
        checked: 5,
        firstBrokenId: seeded[4].id,
        headHash: null,
      });
    });

    it('names the event after a deleted one', async () => {
      const seeded = await seed(log, 'acme', 5);
      log.rows.splice(2, 1);
      await expect(service.verify('acme')).resolves.toMatchObject({ valid: false, firstBrokenId: seeded[3].id });
    });
  });
});
