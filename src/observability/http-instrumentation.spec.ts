import type { ServerResponse } from 'node:http';
import { InFlightRequests } from './http-instrumentation';

function response(headersSent = false) {
  const headers: Record<string, string> = {};
  return {
    headersSent,
    headers,
    setHeader(name: string, value: string) {
      headers[name] = value;
    },
  } as unknown as ServerResponse & { headers: Record<string, string> };
}

describe('InFlightRequests', () => {
  it('counts responses in and out, and a slot finished twice counts once', () => {
    const inFlight = new InFlightRequests();
    const a = inFlight.started(response());
    const b = inFlight.started(response());
    expect(inFlight.size).toBe(2);
    inFlight.finished(a);
    inFlight.finished(a);
    expect(inFlight.size).toBe(1);
    inFlight.finished(b);
    expect(inFlight.size).toBe(0);
  });

  it('reuses freed slots instead of growing', () => {
    const inFlight = new InFlightRequests();
    const first = Array.from({ length: 3 }, () => inFlight.started(response()));
    first.forEach((slot) => inFlight.finished(slot));
    const again = Array.from({ length: 3 }, () => inFlight.started(response()));
    expect([...again].sort()).toEqual([...first].sort());
  });

  it('idle() resolves when the last response finishes, or false at its deadline', async () => {
    const inFlight = new InFlightRequests();
    await expect(inFlight.idle(10)).resolves.toBe(true);
    const slot = inFlight.started(response());
    await expect(inFlight.idle(20)).resolves.toBe(false);
    const waiting = inFlight.idle(5_000);
    inFlight.finished(slot);
    await expect(waiting).resolves.toBe(true);
  });

  it('while draining, responses in flight whose headers are unsent and every later one get Connection: close', () => {
    const inFlight = new InFlightRequests();
    const pending = response();
    const sent = response(true);
    inFlight.finished(inFlight.started(response()));
    inFlight.started(pending);
    inFlight.started(sent);
    inFlight.startDraining();
    const later = response();
    inFlight.started(later);
    expect(pending.headers.Connection).toBe('close');
    expect(sent.headers.Connection).toBeUndefined();
    expect(later.headers.Connection).toBe('close');
    expect(inFlight.draining).toBe(true);
  });
});
