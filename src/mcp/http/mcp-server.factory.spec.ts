import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { isReservedMetaKey, passedOn } from './mcp-server.factory';

describe('passedOn (M7: a tools/call _meta, for the upstream call)', () => {
  const sent: ServerNotification[] = [];
  const send = async (n: ServerNotification) => {
    sent.push(n);
  };
  beforeEach(() => (sent.length = 0));

  it('no _meta, or an empty one: nothing to pass on (the hot path builds nothing)', () => {
    expect(passedOn(undefined, send)).toBeUndefined();
    expect(passedOn({}, send)).toBeUndefined();
  });

  it("keys other than progressToken go upstream unchanged; no progress is asked for without a token", () => {
    const options = passedOn({ 'example.com/trace': 't-1', nested: { a: [1] } }, send);
    expect(options).toEqual({ meta: { 'example.com/trace': 't-1', nested: { a: [1] } } });
    expect(options?.onProgress).toBeUndefined();
  });

  it("a progress token is kept back from the upstream, and each progress goes to the caller under the caller's token", () => {
    for (const token of ['p-1', 42]) {
      sent.length = 0;
      const options = passedOn({ progressToken: token }, send)!;
      expect(options.meta).toBeUndefined();
      options.onProgress!({ progress: 1, total: 2, message: 'half' });
      options.onProgress!({ progress: 2 });
      expect(sent).toEqual([
        { method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2, message: 'half' } },
        { method: 'notifications/progress', params: { progressToken: token, progress: 2 } },
      ]);
    }
  });

  it('a token that is neither a string nor an integer asks for nothing, and is not passed on', () => {
    for (const token of [{ x: 1 }, Number.NaN, 1.5, true, null]) {
      expect(passedOn({ progressToken: token }, send)).toBeUndefined();
      expect(passedOn({ progressToken: token, k: 'v' }, send)).toEqual({ meta: { k: 'v' } });
    }
  });

  it('without a way to send progress (a JSON answer), a token asks for nothing', () => {
    expect(passedOn({ progressToken: 'p' })).toBeUndefined();
    expect(passedOn({ progressToken: 'p', k: 'v' })).toEqual({ meta: { k: 'v' } });
  });

  it("keys the MCP specification reserves stay with Tollgate (a caller's task means nothing on the upstream's shared session)", () => {
    const options = passedOn({ 'io.modelcontextprotocol/related-task': { taskId: 'abc' }, 'modelcontextprotocol.io/x': 1, 'dev.mcp/y': 2, 'example.com/trace': 't' }, send);
    expect(options).toEqual({ meta: { 'example.com/trace': 't' } });
    expect(passedOn({ 'io.modelcontextprotocol/related-task': { taskId: 'abc' } }, send)).toBeUndefined();
  });

  it.each([
    ['io.modelcontextprotocol/related-task', true],
    ['modelcontextprotocol.io/anything', true],
    ['api.mcp.example/x', true],
    ['mcp/x', true],
    ['example.com/trace', false],
    ['mcpserver.dev/x', false],
    ['openai/outputTemplate', false],
    ['modelcontextprotocol', false],
  ])('isReservedMetaKey(%s) → %s', (key, reserved) => {
    expect(isReservedMetaKey(key)).toBe(reserved);
  });

  it('a progress that cannot be sent (caller gone) is dropped without an unhandled rejection', async () => {
    const options = passedOn({ progressToken: 'p' }, () => Promise.reject(new Error('Not connected')))!;
    expect(() => options.onProgress!({ progress: 1 })).not.toThrow();
    await new Promise((r) => setImmediate(r));
  });
});
