import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { passedOn } from './mcp-server.factory';

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

  it('a token that is neither a string nor a finite number asks for nothing', () => {
    expect(passedOn({ progressToken: { x: 1 } }, send)).toEqual({});
    expect(passedOn({ progressToken: Number.NaN, k: 'v' }, send)).toEqual({ meta: { k: 'v' } });
  });

  it('a progress that cannot be sent (caller gone) is dropped without an unhandled rejection', async () => {
    const options = passedOn({ progressToken: 'p' }, () => Promise.reject(new Error('Not connected')))!;
    expect(() => options.onProgress!({ progress: 1 })).not.toThrow();
    await new Promise((r) => setImmediate(r));
  });
});
