import { DomainError, ValidationFailedError } from '../../shared/domain/domain-error';
import { parseLeakReport } from './leak-report';

const raw = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('parseLeakReport (GitHub secret-scanning partner format)', () => {
  it('reads token, type, url and source; keeps a repeated token once', () => {
    expect(
      parseLeakReport(
        raw([
          { token: 'a', type: 't', url: 'https://x', source: 'content' },
          { token: 'b' },
          { token: 'a', type: 'other' },
        ]),
      ),
    ).toEqual([
      { token: 'a', type: 't', url: 'https://x', source: 'content' },
      { token: 'b', type: '', url: null, source: null },
    ]);
  });

  it('an empty report is an empty list', () => {
    expect(parseLeakReport(raw([]))).toEqual([]);
  });

  it('broken JSON is malformed_request', () => {
    expect(() => parseLeakReport(raw('[{"token":'))).toThrow(DomainError);
    try {
      parseLeakReport(raw('[{"token":'));
    } catch (e) {
      expect((e as DomainError).code).toBe('malformed_request');
    }
  });

  it('lists every bad entry, never the token itself', () => {
    let err: ValidationFailedError | undefined;
    try {
      parseLeakReport(raw([{ token: 'secret-1', url: 7 }, 3, { token: 'x'.repeat(1_025) }, { token: 'fine', source: ['no'] }]));
    } catch (e) {
      err = e as ValidationFailedError;
    }
    expect(err?.code).toBe('validation_failed');
    expect(err?.errors.map((e) => e.field)).toEqual(['[0].url', '[1]', '[2].token', '[3].source']);
    expect(JSON.stringify(err?.errors)).not.toContain('secret-1');
  });

  it('refuses a non-array; takes a large report whole', () => {
    expect(() => parseLeakReport(raw({ token: 'a' }))).toThrow(ValidationFailedError);
    expect(parseLeakReport(raw(Array.from({ length: 20_000 }, (_, i) => ({ token: `t${i}` }))))).toHaveLength(20_000);
  });
});
