import { join } from 'node:path';
import { CallCancellation } from '../domain/call-cancellation';
import { ToolCallCancelledError } from '../domain/mcp.errors';
import type { Upstream } from '../domain/upstream';
import { SdkUpstreamConnector } from './sdk-upstream.connector';

/**
 * A call through the SDK client (stdio upstream) stops when its caller's
 * cancellation is cancelled: the SDK client sends the upstream notifications/cancelled,
 * the call settles at once with ToolCallCancelledError (not a timeout, not a
 * failure of the upstream), and the pooled session stays usable.
 */
describe('SdkUpstreamConnector: a call through the SDK client (stdio) cancelled by its caller', () => {
  const now = new Date();
  const everything = join(__dirname, '..', '..', '..', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
  const upstream = {
    id: 'stdio-cancel',
    tenantId: 'tenant-a',
    name: 'local',
    url: '',
    source: 'config',
    headers: {},
    timeoutMs: 20_000,
    tools: [],
    toolsRefreshedAt: null,
    createdBy: 'test',
    createdAt: now,
    updatedAt: now,
    stdio: { command: process.execPath, args: [everything, 'stdio'], env: {} },
  } as unknown as Upstream;
  let connector: SdkUpstreamConnector;

  beforeAll(() => {
    connector = new SdkUpstreamConnector();
  });

  afterAll(async () => {
    await connector.onModuleDestroy();
  });

  it('settles with ToolCallCancelledError soon after the cancellation, and the session serves the next call', async () => {
    const cancel = new CallCancellation();
    let started = 0;
    const call = connector
      .callTool(upstream, 'trigger-long-running-operation', { duration: 10, steps: 10 }, { cancellation: cancel, onProgress: () => void started++ })
      .catch((err: unknown) => err);
    // Aborted once the upstream is running it (its first progress arrived).
    const runningBy = Date.now() + 15_000;
    while (started === 0 && Date.now() < runningBy) await new Promise((r) => setTimeout(r, 20));
    expect(started).toBeGreaterThan(0);
    const abortedAt = Date.now();
    cancel.cancel('user pressed stop');
    const err = await call;
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(ToolCallCancelledError);
    expect((err as ToolCallCancelledError).reason).toBe('user pressed stop');
    expect((err as ToolCallCancelledError).sent).toBe(true); // the upstream had it: the gateway charges it
    const next = await connector.callTool(upstream, 'echo', { message: 'after the cancel' });
    expect(JSON.stringify(next.content)).toContain('after the cancel');
  }, 30_000);

  it('cancelled while the upstream session is being set up (a new process to spawn and initialize): not sent', async () => {
    const fresh = new SdkUpstreamConnector();
    try {
      const cancel = new CallCancellation();
      const call = fresh.callTool({ ...upstream, id: 'stdio-cancel-fresh' } as Upstream, 'echo', { message: 'never' }, { cancellation: cancel }).catch((err: unknown) => err);
      setImmediate(() => cancel.cancel('changed my mind'));
      const err = await call;
      expect(err).toBeInstanceOf(ToolCallCancelledError);
      expect((err as ToolCallCancelledError).sent).toBe(false); // the gateway releases it
    } finally {
      await fresh.onModuleDestroy();
    }
  }, 30_000);

  it('a call cancelled before it starts: nothing is sent, ToolCallCancelledError at once', async () => {
    const cancel = new CallCancellation();
    cancel.cancel();
    await expect(connector.callTool(upstream, 'echo', { message: 'never' }, { cancellation: cancel })).rejects.toBeInstanceOf(ToolCallCancelledError);
  });
});
