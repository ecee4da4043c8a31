import { clipText, hasLoneSurrogate, storableText } from './text';

describe('text PostgreSQL can store', () => {
  it('replaces U+0000 and lone surrogates with U+FFFD, and keeps pairs', () => {
    expect(storableText('a\u0000b')).toBe('a\ufffdb');
    expect(storableText('x\ud800')).toBe('x\ufffd');
    expect(storableText('\udc00y')).toBe('\ufffdy');
    expect(storableText('\udc00\ud800')).toBe('\ufffd\ufffd');
    expect(storableText('ok \u{1F600} ok')).toBe('ok \u{1F600} ok');
    // What PostgreSQL's UTF-8 text gives back for the lone surrogate (Buffer's encoder does the same).
    expect(storableText('x\ud800')).toBe(Buffer.from('x\ud800', 'utf8').toString('utf8'));
  });

  it('tells a lone surrogate from a pair', () => {
    expect(hasLoneSurrogate('\u{1F600}')).toBe(false);
    expect(hasLoneSurrogate('a\ud83d')).toBe(true);
    expect(hasLoneSurrogate('\ude00a')).toBe(true);
    expect(hasLoneSurrogate('plain')).toBe(false);
  });

  it('clips without cutting a surrogate pair', () => {
    const name = 'x'.repeat(127) + '\u{1F600}';
    expect(clipText(name, 128)).toBe('x'.repeat(127));
    expect(clipText('abc', 128)).toBe('abc');
    expect(clipText('abcdef', 3)).toBe('abc');
    expect(hasLoneSurrogate(clipText(name, 128))).toBe(false);
  });
});
