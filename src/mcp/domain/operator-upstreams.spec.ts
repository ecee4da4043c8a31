import { ValidationFailedError } from '../../shared/domain/domain-error';
import { parseOperatorUpstreams } from './operator-upstreams';

describe('parseOperatorUpstreams', () => {
  it('accepts http and stdio entries', () => {
    const specs = parseOperatorUpstreams([
      { tenant_id: '*', name: 'fs', command: 'npx', args: ['-y', 'server'], env: { A: 'b' } },
      { tenant_id: 'acme', name: 'web', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer x' }, timeout_ms: 5000 },
    ]);
    expect(specs).toEqual([
      { tenantId: '*', name: 'fs', headers: {}, stdio: { command: 'npx', args: ['-y', 'server'], env: { A: 'b' } }, timeoutMs: 30000 },
      { tenantId: 'acme', name: 'web', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer x' }, timeoutMs: 5000 },
    ]);
  });

  it.each([
    ['not an array', {}, 'UPSTREAMS_FILE'],
    ['both url and command', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp', command: 'x' }], 'UPSTREAMS_FILE[0].url'],
    ['neither url nor command', [{ tenant_id: '*', name: 'a' }], 'UPSTREAMS_FILE[0].url'],
    ['bad name', [{ tenant_id: '*', name: 'A.B', url: 'http://x/mcp' }], 'UPSTREAMS_FILE[0].name'],
    ['bad tenant', [{ tenant_id: '', name: 'a', url: 'http://x/mcp' }], 'UPSTREAMS_FILE[0].tenant_id'],
    ['unknown field', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp', shell: true }], 'UPSTREAMS_FILE[0].shell'],
    ['args not strings', [{ tenant_id: '*', name: 'a', command: 'x', args: [1] }], 'UPSTREAMS_FILE[0].args'],
    ['timeout out of range', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp', timeout_ms: 5 }], 'UPSTREAMS_FILE[0].timeout_ms'],
    ['duplicate', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp' }, { tenant_id: '*', name: 'a', url: 'http://y/mcp' }], 'UPSTREAMS_FILE[1].name'],
    ['a header value Node cannot send', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp', headers: { Authorization: 'Bearer s3cr\u20acT' } }], 'UPSTREAMS_FILE[0].headers.Authorization'],
    ['a framing header', [{ tenant_id: '*', name: 'a', url: 'http://x/mcp', headers: { 'Content-Length': '5' } }], 'UPSTREAMS_FILE[0].headers.Content-Length'],
  ])('refuses %s', (_label, raw, field) => {
    let error: unknown;
    try {
      parseOperatorUpstreams(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors.map((e) => e.field)).toContain(field);
    // Never the value (often a credential).
    expect(JSON.stringify((error as ValidationFailedError).errors)).not.toContain('s3cr');
  });
});
