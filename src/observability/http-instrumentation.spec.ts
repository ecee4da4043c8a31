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
  it('counts responses in and out, and a response finished twice counts once', () => {
    const inFlight = new InFlightRequests();
    const [resA, resB] = [response(), response()];
    const a = inFlight.started(resA);
    const b = inFlight.started(resB);
    expect(inFlight.size).toBe(2);
    inFlight.finished(a, resA);
    inFlight.finished(a, resA);
    expect(inFlight.size).toBe(1);
    inFlight.finished(b, resB);
    expect(inFlight.size).toBe(0);
  });

  it('reuses freed slots instead of growing, and a late finish of a slot taken again since frees nothing', () => {
    const inFlight = new InFlightRequests();
    const old = Array.from({ length: 3 }, () => response());
    const first = old.map((res) => inFlight.started(res));
    first.forEach((slot, i) => inFlight.finished(slot, old[i]));
    const again = Array.from({ length: 3 }, () => inFlight.started(response()));
    expect([...again].sort()).toEqual([...first].sort());
    inFlight.finished(first[0], old[0]);
    expect(inFlight.size).toBe(3);
  });

  it('idle() resolves when the last response finishes, or false at its deadline', async () => {
    const inFlight = new InFlightRequests();
    await expect(inFlight.idle(10)).resolves.toBe(true);
    const res = response();
    const slot = inFlight.started(res);
    await expect(inFlight.idle(20)).resolves.toBe(false);
    const waiting = inFlight.idle(5_000);
    inFlight.finished(slot, res);
    await expect(waiting).resolves.toBe(true);
  });

  it('while draining, responses in flight whose headers are unsent and every later one get Connection: close', () => {
    const inFlight = new InFlightRequests();
    const pending = response();
    const sent = response(true);
    const done = response();
    inFlight.finished(inFlight.started(done), done);
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
