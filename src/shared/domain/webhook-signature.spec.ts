import { signPayload, verifySignature } from './webhook-signature';

describe('billing webhook signature', () => {
  const secret = 'whsec_0123456789abcdef';
  const body = Buffer.from('{"id":"evt_1"}');
  const now = 1_800_000_000;

  it.each([
    ['valid', signPayload(secret, now, body), now, { ok: true }],
    ['4 minutes old', signPayload(secret, now - 240, body), now, { ok: true }],
    ['6 minutes old', signPayload(secret, now - 360, body), now, { ok: false, reason: 'expired' }],
    ['from the future', signPayload(secret, now + 360, body), now, { ok: false, reason: 'expired' }],
    ['other secret', signPayload('another-secret-123456', now, body), now, { ok: false, reason: 'mismatch' }],
    ['missing', undefined, now, { ok: false, reason: 'missing' }],
    ['no v1', `t=${now}`, now, { ok: false, reason: 'malformed' }],
    ['garbage', 'hello', now, { ok: false, reason: 'malformed' }],
  ])('%s', (_label, header, at, expected) => {
    expect(verifySignature(secret, header as string | undefined, body, at as number)).toEqual(expected);
  });

  it('refuses a body changed after signing', () => {
    const header = signPayload(secret, now, body);
    expect(verifySignature(secret, header, Buffer.from('{"id":"evt_2"}'), now)).toEqual({ ok: false, reason: 'mismatch' });
  });
});
