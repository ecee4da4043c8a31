import { decodeHeaderValue, encodeHeaderValue, HEADER_MISMATCH_RPC_CODE, headerMismatch, mirroredValues } from './mirrored-headers';

describe('SEP-2243 mirrored headers', () => {
  const call = (name: string) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } });

  it('encodes visible ASCII as it is and anything else as the Base64 sentinel, and decodes both', () => {
    expect(encodeHeaderValue('github__create_issue')).toBe('github__create_issue');
    expect(encodeHeaderValue('tööl')).toBe(`=?base64?${Buffer.from('tööl').toString('base64')}?=`);
    expect(encodeHeaderValue(' padded')).toMatch(/^=\?base64\?/);
    expect(encodeHeaderValue('=?base64?looks-like-one')).toMatch(/^=\?base64\?/);
    for (const v of ['plain', 'tööl', ' padded', 'a\nb', '=?base64?x']) expect(decodeHeaderValue(encodeHeaderValue(v))).toBe(v);
    expect(decodeHeaderValue('=?base64?not base64!?=')).toBeNull();
  });

  it('the sentinel must be canonical, padded Base64 of valid UTF-8; without its suffix a value is literal', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8=?=')).toBe('Hello');
    expect(decodeHeaderValue('=?base64?SGVsbG8?=')).toBeNull(); // padding missing
    expect(decodeHeaderValue('=?base64?SGVsbG9=?=')).toBeNull(); // stray bits in the padding
    expect(decodeHeaderValue('=?base64?A?=')).toBeNull();
    expect(decodeHeaderValue('=?base64?/w==?=')).toBeNull(); // not UTF-8
    expect(decodeHeaderValue('=?base64??=')).toBe('');
    expect(decodeHeaderValue('=?base64?SGVsbG8=')).toBe('=?base64?SGVsbG8='); // no suffix: literal
    expect(decodeHeaderValue(' \tx\t ')).toBe('x');
    expect(decodeHeaderValue('x\u00a0')).toBe('x\u00a0'); // only HTTP whitespace is trimmed
  });

  it('derives the values from the body: method of requests, name or uri of the three addressed methods', () => {
    expect(mirroredValues(call('x'))).toEqual({ method: 'tools/call', name: 'x' });
    expect(mirroredValues({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'file:///a' } })).toEqual({ method: 'resources/read', name: 'file:///a' });
    expect(mirroredValues({ jsonrpc: '2.0', id: 3, method: 'tools/list' })).toEqual({ method: 'tools/list', name: null });
    // A notification carries its method too (a proxy routing on Mcp-Method must not be misled by one).
    expect(mirroredValues({ jsonrpc: '2.0', method: 'notifications/initialized' })).toEqual({ method: 'notifications/initialized', name: null });
    expect(mirroredValues({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, name: 'x' } })).toEqual({ method: 'notifications/cancelled', name: null });
    expect(mirroredValues({ jsonrpc: '2.0', id: 4, result: {} })).toEqual({ method: null, name: null });
    expect(mirroredValues([call('x')])).toEqual({ method: null, name: null });
  });

  it('agrees when absent or equal (Base64 decoded), and says why when they differ', () => {
    expect(headerMismatch({}, call('x'))).toBeNull();
    expect(headerMismatch({ 'mcp-method': 'tools/call', 'mcp-name': 'x' }, call('x'))).toBeNull();
    expect(headerMismatch({ 'mcp-method': 'tools/call', 'mcp-name': encodeHeaderValue('tööl') }, call('tööl'))).toBeNull();
    expect(headerMismatch({ 'mcp-method': 'tools/list' }, call('x'))).toMatch(/Mcp-Method/);
    expect(headerMismatch({ 'mcp-name': 'y' }, call('x'))).toMatch(/Mcp-Name/);
    expect(headerMismatch({ 'mcp-name': '=?base64?%%?=' }, call('x'))).toMatch(/base64/);
    expect(headerMismatch({ 'mcp-name': 'x' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBeNull(); // no name to contradict
    expect(headerMismatch({ 'mcp-method': 'tools/call' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 42 } })).toMatch(/does not match/);
    expect(headerMismatch({ 'mcp-method': 'notifications/cancelled' }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 42 } })).toBeNull();
    expect(headerMismatch({ 'mcp-method': 'tools/list' }, [call('x')])).toMatch(/batch/);
    expect(headerMismatch({}, [call('x')])).toBeNull();
    expect(headerMismatch({ 'mcp-method': 'TOOLS/CALL' }, call('x'))).toMatch(/Mcp-Method/);
    expect(HEADER_MISMATCH_RPC_CODE).toBe(-32020);
  });
});
