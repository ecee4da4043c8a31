import { csvField, csvHeader, csvRow, ndjsonLine } from './audit-export.format';
import type { AuditEventResponseDto } from './audit-log.dto';

const EVENT: AuditEventResponseDto = {
  id: '3f0c5a8e-2b1d-4c7e-9a6f-1e2d3c4b5a69',
  occurred_at: '2025-11-28T09:30:00.123Z',
  tenant_id: 'acme',
  actor: { type: 'user', id: 'alice' },
  action: 'api_key.updated',
  target: { type: 'api_key', id: 'key-1' },
  outcome: 'success',
  ip: '::1',
  user_agent: 'Mozilla/5.0 (X11, "quoted")',
  request_id: null,
  metadata: { name: 'a,b' },
  prev_hash: null,
  hash: 'a'.repeat(64),
};

describe('csvField', () => {
  it.each<[string, string | null, string]>([
    ['plain text as is', 'api_key.created', 'api_key.created'],
    ['null as an empty field', null, ''],
    ['a comma quoted', 'a,b', '"a,b"'],
    ['quotes doubled and quoted', 'say "hi"', '"say ""hi"""'],
    ['a newline quoted', 'a\nb', '"a\nb"'],
    ['a CR quoted', 'a\rb', '"a\rb"'],
    ['a formula neutralized', '=HYPERLINK("x")', '"\'=HYPERLINK(""x"")"'],
    ['a leading plus neutralized', '+1', "'+1"],
    ['a leading minus neutralized', '-1', "'-1"],
    ['a leading at-sign neutralized', '@SUM(A1)', "'@SUM(A1)"],
    ['an inner equals sign left alone', 'a=b', 'a=b'],
  ])('writes %s', (_name, value, expected) => {
    expect(csvField(value)).toBe(expected);
  });
});

describe('csv rows', () => {
  it('has a header naming every column, CRLF-terminated', () => {
    expect(csvHeader()).toBe(
      'id,occurred_at,tenant_id,actor_type,actor_id,action,target_type,target_id,outcome,ip,user_agent,request_id,metadata,prev_hash,hash\r\n',
    );
  });

  it('writes one record per event with the same column count as the header', () => {
    expect(csvRow(EVENT)).toBe(
      `3f0c5a8e-2b1d-4c7e-9a6f-1e2d3c4b5a69,2025-11-28T09:30:00.123Z,acme,user,alice,api_key.updated,api_key,key-1,success,::1,` +
        `"Mozilla/5.0 (X11, ""quoted"")",,"{""name"":""a,b""}",,${'a'.repeat(64)}\r\n`,
    );
  });

  it('writes empty target columns for an event without target', () => {
    expect(csvRow({ ...EVENT, target: null })).toContain(',api_key.updated,,,success,');
  });
});

describe('ndjsonLine', () => {
  it('is one JSON document on one line', () => {
    const line = ndjsonLine({ ...EVENT, metadata: { note: 'line1\nline2' } });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ ...EVENT, metadata: { note: 'line1\nline2' } });
  });
});
