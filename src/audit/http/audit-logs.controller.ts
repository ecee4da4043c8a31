import { Controller, Get, Header, Param, Query, StreamableFile, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { Readable } from 'node:stream';
import { CurrentPrincipal, Roles } from '../../auth/auth.decorators';
import { JwtAuthGuard } from '../../auth/jwt-auth.guard';
import type { Principal } from '../../auth/principal';
import { RolesGuard } from '../../auth/roles.guard';
import { Clock } from '../../shared/domain/clock';
import { ApiManagementAuth, ApiProblems } from '../../shared/http/api-problems.decorator';
import { AuditEventDto, AuditEventPageDto, AuditVerifyResponseDto } from './audit-response.dto';
import { AuditLogService } from '../application/audit-log.service';
import type { StoredAuditEvent } from '../domain/audit-event';
import { csvHeader, csvRow, ndjsonLine } from './audit-export.format';
import { criteriaOf, ExportAuditLogsQueryDto, ListAuditLogsQueryDto, toAuditEventResponse } from './audit-log.dto';

/** Flush the export to the socket in chunks of about this many characters. */
const CHUNK = 64 * 1024;

/** L2, L3: the auditor's read-only view of their tenant's log. */
@ApiTags('audit-logs')
@ApiManagementAuth()
@Controller('api/v1/audit-logs')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles(['auditor', 'admin'])
export class AuditLogsController {
  constructor(
    private readonly audit: AuditLogService,
    private readonly clock: Clock,
  ) {}

  /** Newest first; `next_cursor` walks back in time (keyset on seq, see AuditLogService). */
  @Get()
  @ApiOperation({ summary: 'Audit events of the tenant, newest first' })
  @ApiOkResponse({ type: AuditEventPageDto })
  @ApiProblems('validation_failed')
  @Header('Cache-Control', 'no-store')
  async list(@CurrentPrincipal() p: Principal, @Query() q: ListAuditLogsQueryDto) {
    const page = await this.audit.list(p.tenantId, criteriaOf(q), q.limit ?? 50, q.cursor);
    return { data: page.data.map(toAuditEventResponse), next_cursor: page.nextCursor };
  }

  /** Oldest first (chain order), streamed page by page: NDJSON, or CSV with `format=csv`. */
  @Get('export')
  @ApiOperation({ summary: 'Export in chain order as NDJSON (default) or CSV' })
  @ApiProduces('application/x-ndjson', 'text/csv')
  @ApiOkResponse({ description: 'One event per line (NDJSON: the same object as the listing, re-hashable offline).', schema: { type: 'string' } })
  @ApiProblems('validation_failed')
  @Header('Cache-Control', 'no-store')
  async export(@CurrentPrincipal() p: Principal, @Query() q: ExportAuditLogsQueryDto): Promise<StreamableFile> {
    const format = q.format ?? 'ndjson';
    const events = await this.audit.export(p.tenantId, criteriaOf(q));
    const stamp = this.clock.now().toISOString().replace(/[:.]/g, '-');
    const body = Readable.from(chunked(format === 'csv' ? csvLines(events) : ndjsonLines(events)), { objectMode: false });
    return new StreamableFile(body, {
      type: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      disposition: `attachment; filename="audit-logs-${stamp}.${format}"`,
    });
  }

  @Get('verify')
  @ApiOperation({ summary: 'Verify the tenant\'s hash chain' })
  @ApiOkResponse({ type: AuditVerifyResponseDto })
  @Header('Cache-Control', 'no-store')
  async verify(@CurrentPrincipal() p: Principal) {
    const v = await this.audit.verify(p.tenantId);
    return { valid: v.valid, checked: v.checked, first_broken_id: v.firstBrokenId, head_hash: v.headHash };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One audit event' })
  @ApiOkResponse({ type: AuditEventDto })
  @ApiProblems('not_found')
  @Header('Cache-Control', 'no-store')
  async get(@CurrentPrincipal() p: Principal, @Param('id') id: string) {
    return toAuditEventResponse(await this.audit.get(p.tenantId, id));
  }
}

async function* ndjsonLines(events: AsyncIterable<StoredAuditEvent>): AsyncGenerator<string> {
  for await (const e of events) yield ndjsonLine(toAuditEventResponse(e));
}

async function* csvLines(events: AsyncIterable<StoredAuditEvent>): AsyncGenerator<string> {
  yield csvHeader();
  for await (const e of events) yield csvRow(toAuditEventResponse(e));
}

async function* chunked(lines: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let buffer = '';
  for await (const line of lines) {
    buffer += line;
    if (buffer.length >= CHUNK) {
      yield Buffer.from(buffer, 'utf8');
      buffer = '';
    }
  }
  if (buffer.length > 0) yield Buffer.from(buffer, 'utf8');
}
