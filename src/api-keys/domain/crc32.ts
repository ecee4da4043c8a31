/**
 * CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) over the char codes of an
 * ASCII string. node's zlib.crc32 exists only from Node 20.15 and zlib is not
 * allowed in domain/; these few lines keep the domain pure.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** `s` must be ASCII (each char code < 256 is taken as one byte). */
export function crc32(s: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < s.length; i++) crc = TABLE[(crc ^ s.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
