import { SseMessageReader } from './sse-stream';

function reader() {
  const messages: unknown[] = [];
  const r = new SseMessageReader((m) => messages.push(m));
  return { r, messages };
}

const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('SseMessageReader', () => {
  it('hands over each JSON-RPC message as soon as its event is complete', () => {
    const { r, messages } = reader();
    r.push(bytes('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\nevent: message\ndata: {"jsonrpc":"2.0",'));
    expect(messages).toEqual([{ jsonrpc: '2.0', method: 'notifications/progress' }]);
    r.push(bytes('"id":7,"result":{}}\n\n'));
    expect(messages).toEqual([{ jsonrpc: '2.0', method: 'notifications/progress' }, { jsonrpc: '2.0', id: 7, result: {} }]);
  });

  it('joins multi-line data and decodes UTF-8 split across chunks', () => {
    const { r, messages } = reader();
    const whole = bytes('data: {"text":\ndata: "h\u00e9llo \u{1F600}"}\r\n\r\n');
    const cut = whole.indexOf(0xf0) + 2; // inside the 4-byte emoji
    r.push(whole.subarray(0, cut));
    expect(messages).toEqual([]);
    r.push(whole.subarray(cut));
    expect(messages).toEqual([{ text: 'h\u00e9llo \u{1F600}' }]);
  });

  it('skips priming events, comments, other event types and data that is not JSON, but keeps ids and retry', () => {
    const { r, messages } = reader();
    r.push(bytes('id: s1_0\nretry: 250\ndata: \n\n: keepalive\n\nevent: ping\ndata: {"a":1}\n\ndata: not json\n\n'));
    expect(messages).toEqual([]);
    expect(r.lastEventId).toBe('s1_0');
    expect(r.retryMs).toBe(250);
    r.push(bytes('event: message\nid: s1_1\ndata: {"b":2}\n\n'));
    expect(messages).toEqual([{ b: 2 }]);
    expect(r.lastEventId).toBe('s1_1');
  });

  it('reset() drops an unfinished event of the previous stream and keeps the last event id for resuming', () => {
    const { r, messages } = reader();
    r.push(bytes('id: s1_3\ndata: {"done":false}\n\ndata: {"cut":'));
    r.reset();
    expect(r.lastEventId).toBe('s1_3');
    r.push(bytes('id: s1_4\ndata: {"resumed":true}\n\n'));
    expect(messages).toEqual([{ done: false }, { resumed: true }]);
    expect(r.lastEventId).toBe('s1_4');
  });
});
