import type { AgentPrincipal } from '../../auth/agent-principal';
import type { AuthEventsRecorder } from '../../auth/auth-events.recorder';
import { NoopMetrics } from '../../observability/metrics';
import type { CallAdmission } from '../../plans/application/call-admission.service';
import type { UsageBuffer } from '../../usage/application/usage-buffer';
import type { TokenCounter } from '../../usage/domain/usage';
import { CallCancellation } from '../domain/call-cancellation';
import { CircuitBreaker } from '../domain/circuit-breaker';
import { ToolCallCancelledError, UpstreamFailureError } from '../domain/mcp.errors';
import type { Upstream } from '../domain/upstream';
import type { ToolCallOptions, UpstreamConnector } from '../domain/upstream.repository';
import { McpGatewayService } from './mcp-gateway.service';
import type { ToolCatalog } from './tool-catalog';

/**
 * Who pays for a cancelled call: released when nothing reached the upstream
 * (cancelled before admission ended, or while the upstream session was being
 * set up), charged once the upstream had it. A cancelled call never moves the
 * circuit breaker, and hands back a half-open trial it held, as a call refused
 * by admission does.
 */
describe('McpGatewayService.callTool: a call its caller cancels, or admission refuses', () => {
  const upstream = { id: 'u1', name: 'fake' } as Upstream;
  const caller = {
    tenantId: 't1',
    keyId: 'k1',
    userId: 'user',
    actor: { type: 'api_key', id: 'k1' },
    scope: { decide: () => ({ allowed: true, matched_rule: '*' }) },
  } as unknown as AgentPrincipal;
  let log: string[];
  let breaker: CircuitBreaker;
  let connect: (options?: ToolCallOptions) => Promise<Record<string, unknown>>;
  let duringAdmission: () => void;

  function gateway(): McpGatewayService {
    const catalog = { find: async () => ({ tool: { upstreamToolName: 'slow' }, upstream }) } as unknown as ToolCatalog;
    const connector = { callTool: (_u: Upstream, _t: string, _a: unknown, options?: ToolCallOptions) => connect(options) } as unknown as UpstreamConnector;
    const admission = {
      admit: async () => {
        log.push('admit');
        duringAdmission();
        return { price: 3 };
      },
      release: async () => void log.push('release'),
      budget: () => ({}),
    } as unknown as CallAdmission;
    const usage = { record: (r: { credits: number }) => void log.push(`charge ${r.credits}`) } as unknown as UsageBuffer;
    const audit = { recordLater: () => undefined } as unknown as AuthEventsRecorder;
    const tokens = { count: () => 1 } as unknown as TokenCounter;
    return new McpGatewayService(catalog, connector, audit, admission, usage, { now: () => new Date() }, tokens, breaker, new NoopMetrics());
  }

  beforeEach(() => {
    log = [];
    duringAdmission = () => undefined;
    breaker = new CircuitBreaker(1, 1_000);
  });

  it('cancelled at the upstream (sent): charged, nothing released', async () => {
    connect = async () => {
      throw new ToolCallCancelledError('stop', true);
    };
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).rejects.toBeInstanceOf(ToolCallCancelledError);
    expect(log).toEqual(['admit', 'charge 3']);
  });

  it('cancelled before it was sent (the upstream session was being set up): released, not charged', async () => {
    connect = async () => {
      throw new ToolCallCancelledError('stop', false);
    };
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).rejects.toBeInstanceOf(ToolCallCancelledError);
    expect(log).toEqual(['admit', 'release']);
  });

  it('cancelled during admission: released, and the upstream is never called', async () => {
    const cancellation = new CallCancellation();
    let called = 0;
    connect = async () => {
      called++;
      return { content: [] };
    };
    duringAdmission = () => cancellation.cancel('stop');
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null }, { cancellation })).rejects.toBeInstanceOf(ToolCallCancelledError);
    expect(log).toEqual(['admit', 'release']);
    expect(called).toBe(0);
  });

  it('cancelled before anything: not even admitted', async () => {
    const cancellation = new CallCancellation();
    cancellation.cancel();
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null }, { cancellation })).rejects.toBeInstanceOf(ToolCallCancelledError);
    expect(log).toEqual([]);
  });

  it('a half-open trial refused by admission (quota, credits, database) is handed back: the circuit does not stay shut for good', async () => {
    breaker.failure(upstream.id, Date.now() - 2_000); // open, cooldown over: the next call is the trial
    duringAdmission = () => {
      throw Object.assign(new Error('quota exceeded'), { code: 'quota_exceeded' });
    };
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).rejects.toThrow('quota exceeded');
    duringAdmission = () => undefined;
    connect = async () => ({ content: [] });
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).resolves.toMatchObject({ result: { content: [] } });
    expect(breaker.state(upstream.id, Date.now()).state).toBe('closed'); // the next call was the trial, and it closed the circuit
  });

  it('a half-open trial cancelled is handed back (the next call is the trial); a call of a closed circuit leaves the breaker alone', async () => {
    breaker.failure(upstream.id, Date.now() - 2_000); // open, cooldown over: the next call is the trial
    connect = async () => {
      throw new ToolCallCancelledError('stop', true);
    };
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).rejects.toBeInstanceOf(ToolCallCancelledError);
    expect(breaker.allow(upstream.id, Date.now())).toBe('trial');
    // Another call, while that trial is held: refused as the circuit is open, and nothing of the trial is touched.
    connect = async () => ({ content: [] });
    await expect(gateway().callTool(caller, 'fake__slow', {}, { requestId: null, ip: null, userAgent: null })).rejects.toBeInstanceOf(UpstreamFailureError);
    expect(breaker.state(upstream.id, Date.now()).state).toBe('half_open');
  });
});
