import { crc32 } from './crc32';

describe('crc32 (IEEE)', () => {
  it.each<[string, number]>([
    ['', 0x00000000],
    ['a', 0xe8b7be43],
    ['abc', 0x352441c2],
    ['123456789', 0xcbf43926],
    ['message digest', 0x20159d7f],
    ['The quick brown fox jumps over the lazy dog', 0x414fa339],
  ])('crc32(%p) = %p', (input, expected) => {
    expect(crc32(input)).toBe(expected);
  });
});
