import { CallCancellation } from './call-cancellation';

describe('CallCancellation', () => {
  it('tells its listener once, with the reason; later cancellations change nothing', () => {
    const c = new CallCancellation();
    const heard: (string | undefined)[] = [];
    c.onCancel((r) => heard.push(r));
    expect(c.cancelled).toBe(false);
    c.cancel('user pressed stop');
    c.cancel('again');
    expect(heard).toEqual(['user pressed stop']);
    expect(c.cancelled).toBe(true);
    expect(c.reason).toBe('user pressed stop');
  });

  it('a listener added after the cancellation is called at once; a removed one never', () => {
    const c = new CallCancellation();
    const removed = jest.fn();
    c.onCancel(removed)();
    c.cancel();
    expect(removed).not.toHaveBeenCalled();
    const late = jest.fn();
    c.onCancel(late);
    expect(late).toHaveBeenCalledWith(undefined);
  });

  it('removing a listener that was replaced leaves the new one in place', () => {
    const c = new CallCancellation();
    const first = jest.fn();
    const second = jest.fn();
    const removeFirst = c.onCancel(first);
    c.onCancel(second);
    removeFirst();
    c.cancel('x');
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledWith('x');
  });
});
