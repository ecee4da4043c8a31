import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceParser } from 'eventsource-parser';

/**
 * Reads JSON-RPC messages out of a Server-Sent Events stream as its bytes
 * arrive, the way the SDK client's pipeline (TextDecoderStream →
 * eventsource-parser → JSON.parse) does in StreamableHTTPClientTransport:
 * - an event with an `id:` moves the last event id (kept for resuming);
 * - events without data (priming events) and comments (keep-alives) carry no message;
 * - only untyped events and events of type `message` are messages;
 * - data that is not JSON is skipped (the SDK reports it to onerror and skips it).
 * `retry:` is kept as the server's reconnection delay.
 */
export class SseMessageReader {
  /** The id of the last event that carried one, over every stream read so far. */
  lastEventId: string | undefined;
  /** The server's reconnection delay (`retry:`), if it sent one. */
  retryMs: number | undefined;
  private decoder = new StringDecoder('utf8');
  private readonly parser: EventSourceParser;

  constructor(onMessage: (message: unknown) => void) {
    this.parser = createParser({
      onEvent: (event) => {
        if (event.id) this.lastEventId = event.id;
        if (!event.data || (event.event && event.event !== 'message')) return;
        let message: unknown;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        onMessage(message);
      },
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
  }

  /** Feeds the next bytes of the stream; the messages they complete are handed to `onMessage` before it returns. */
  push(chunk: Buffer): void {
    this.parser.feed(this.decoder.write(chunk));
  }

  /** Before reading another stream (a resumption): drops what was left of an unfinished event. Keeps lastEventId and retryMs. */
  reset(): void {
    this.parser.reset();
    this.decoder = new StringDecoder('utf8');
  }
}
