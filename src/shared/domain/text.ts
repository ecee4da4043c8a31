/**
 * Text that PostgreSQL can store and give back unchanged. PostgreSQL refuses
 * U+0000 in text and jsonb, and a lone UTF-16 surrogate (from a JSON escape
 * such as "\ud800", or a string cut inside a pair) is not Unicode: jsonb
 * refuses its escape, and text silently stores U+FFFD instead, so whatever
 * was hashed before the insert no longer matches the row.
 */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `value` with U+0000 and lone surrogates replaced by U+FFFD (what PostgreSQL's text would keep). */
export function storableText(value: string): string {
  UNSTORABLE.lastIndex = 0;
  return UNSTORABLE.test(value) ? value.replace(UNSTORABLE, '\ufffd') : value;
}

/** Whether `value` holds a lone surrogate: valid JSON, but not Unicode text. */
export function hasLoneSurrogate(value: string): boolean {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);
}

/** The first `max` UTF-16 units of `value`, never ending inside a surrogate pair. */
export function clipText(value: string, max: number): string {
  if (value.length <= max) return value;
  const code = value.charCodeAt(max - 1);
  return value.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
