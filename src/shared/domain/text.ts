/**
 * Text that PostgreSQL can store and give back unchanged. PostgreSQL refuses
 * U+0000 in text and jsonb, and a lone UTF-16 surrogate (from a JSON escape
 * such as "\ud800", or a string cut inside a pair) is not Unicode: jsonb
 * refuses its escape, and text silently stores U+FFFD instead, so whatever
 * was hashed before the insert no longer matches the row.
 */

/** `value` with U+0000 and lone surrogates replaced by U+FFFD (what PostgreSQL's text would keep). */
export function storableText(value: string): string {
  const wellFormed = value.toWellFormed();
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\ufffd') : wellFormed;
}

/** Whether `value` holds a lone surrogate: valid JSON, but not Unicode text. */
export function hasLoneSurrogate(value: string): boolean {
  return !value.isWellFormed();
}

/** The first `max` UTF-16 units of `value`, never ending inside a surrogate pair. */
export function clipText(value: string, max: number): string {
  if (value.length <= max) return value;
  const code = value.charCodeAt(max - 1);
  return value.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
