import { validateHeaderValue } from 'node:http';
import { ValidationFailedError } from '../../shared/domain/domain-error';
import { redactHeaderValues, REDACTED, sameEndpoint, validateUpstreamHeaders } from './upstream';

/** What Node's two HTTP clients accept: node:http (tools/call) and fetch's Headers (the SDK transport). */
function nodeSends(value: string): boolean {
  try {
    validateHeaderValue('x-test', value);
    new Headers({ 'x-test': value });
    return true;
  } catch {
    return false;
  }
}

function refusal(headers: Record<string, unknown>): ValidationFailedError | undefined {
  try {
    validateUpstreamHeaders(headers);
    return undefined;
  } catch (err) {
    if (err instanceof ValidationFailedError) return err;
    throw err;
  }
}

describe('validateUpstreamHeaders', () => {
  it('accepts a character inside a value exactly when Node can send it (U+0000–U+017F)', () => {
    const disagreements: string[] = [];
    for (let code = 0; code <= 0x17f; code++) {
      const value = `a${String.fromCharCode(code)}b`;
      const accepted = refusal({ 'X-Test': value }) === undefined;
      if (accepted !== nodeSends(value)) disagreements.push(code.toString(16));
    }
    expect(disagreements).toEqual([]);
  });

  it.each([
    ['Bearer abc', true],
    ['Basic d\u00e9j\u00e0\tvu', true],
    ['x', true],
    ['a  b', true],
    ['', false],
    [' ', false],
    [' s3cr', false],
    ['s3cr ', false],
    ['\ts3cr', false],
    ['s3cr\t', false],
    ['s3cr\u20acT', false],
    ['s3cr\u0000T', false],
    ['s3cr\u0001T', false],
    ['s3cr\u007fT', false],
    ['s3cr\r\nX-Injected: 1', false],
  ])('%j → accepted: %s', (value, ok) => {
    const err = refusal({ Authorization: value });
    expect(err === undefined).toBe(ok);
    if (err) {
      expect(err.errors).toEqual([{ field: 'headers.Authorization', message: expect.any(String) }]);
      // The refusal names the header, never the value (a credential).
      expect(JSON.stringify({ message: err.message, details: err.details })).not.toContain('s3cr');
    }
  });

  it('accepts values of up to 4096 characters', () => {
    expect(refusal({ 'X-A': 'x'.repeat(4096) })).toBeUndefined();
    expect(refusal({ 'X-A': 'x'.repeat(4097) })?.errors).toEqual([{ field: 'headers.X-A', message: expect.any(String) }]);
  });

  it('refuses non-string values, bad or forbidden names, and more than 20 headers', () => {
    expect(refusal({ 'X-A': 1 })?.errors).toEqual([{ field: 'headers.X-A', message: expect.any(String) }]);
    expect(refusal({ 'X A': 'v' })?.errors).toEqual([{ field: 'headers.X A', message: 'is not an allowed header name' }]);
    expect(refusal({ Host: 'v' })?.errors).toEqual([{ field: 'headers.Host', message: 'is not an allowed header name' }]);
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-${i}`, 'v']));
    expect(refusal(many)?.errors).toContainEqual({ field: 'headers', message: 'at most 20 headers' });
  });
});

describe('sameEndpoint', () => {
  it('compares the url and every header, in any order', () => {
    const a = { url: 'http://u/mcp', headers: { A: '1', B: '2' } };
    expect(sameEndpoint(a, { url: 'http://u/mcp', headers: { B: '2', A: '1' } })).toBe(true);
    expect(sameEndpoint(a, { url: 'http://v/mcp', headers: { A: '1', B: '2' } })).toBe(false);
    expect(sameEndpoint(a, { url: 'http://u/mcp', headers: { A: '1', B: '3' } })).toBe(false);
    expect(sameEndpoint(a, { url: 'http://u/mcp', headers: { A: '1' } })).toBe(false);
    expect(sameEndpoint(a, { url: 'http://u/mcp', headers: { A: '1', C: '2' } })).toBe(false);
    expect(sameEndpoint({ url: 'x', headers: {} }, { url: 'x', headers: {} })).toBe(true);
  });
});

describe('redactHeaderValues', () => {
  const headers = { Authorization: 'Bearer tok-9f8e7d6c5b4a', 'X-Key': 'sk-0123456789', 'X-Version': '1', 'X-Regex': 'a.b*c+(d)' };

  it('hides every occurrence of a value, and of the longer parts of one (the token of "Bearer <token>")', () => {
    expect(redactHeaderValues('invalid credentials: Bearer tok-9f8e7d6c5b4a / sk-0123456789', headers)).toBe(
      `invalid credentials: ${REDACTED} / ${REDACTED}`,
    );
    expect(redactHeaderValues('unknown token tok-9f8e7d6c5b4a', headers)).toBe(`unknown token ${REDACTED}`);
    expect(redactHeaderValues('sk-0123456789sk-0123456789', headers)).toBe(`${REDACTED}${REDACTED}`);
  });

  it('treats values literally, not as patterns, and leaves short values and other text alone', () => {
    expect(redactHeaderValues('got a.b*c+(d) and axbbbc+d', headers)).toBe(`got ${REDACTED} and axbbbc+d`);
    expect(redactHeaderValues('error 1: Bearer required', headers)).toBe('error 1: Bearer required');
    expect(redactHeaderValues('no headers', {})).toBe('no headers');
  });
});
