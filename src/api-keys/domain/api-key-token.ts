import { randomBytes } from 'node:crypto';
import { crc32 } from './crc32';

export const API_KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{0,15}$/;
export type APIKeyEnv = 'live' | 'test';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 32 × log2(62) ≈ 190.5 bits of entropy. */
export const RANDOM_LENGTH = 32;
/** 62^6 ≈ 5.7e10 > 2^32, so any CRC32 fits. */
export const CHECKSUM_LENGTH = 6;
const MAX_TOKEN_LENGTH = 128;
/** Largest multiple of 62 that fits in a byte: bytes ≥ 248 are rejected to avoid modulo bias. */
const REJECT_AT = 248;
const TOKEN_SHAPE = /^([a-z][a-z0-9]{0,15})_(live|test)_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // ~3% of bytes are rejected; ask for a little extra to usually need one call.
    const bytes = randomBytes(length + 8);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      if (bytes[i] < REJECT_AT) out += BASE62[bytes[i] % 62];
    }
  }
  return out;
}

/** Fixed-width base62, zero-padded on the left. */
export function encodeChecksum(value: number): string {
  let v = value;
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

/**
 * A plaintext API key: `<prefix>_<env>_<32 base62 random><6 base62 CRC32>`,
 * e.g. `tg_live_…`. The checksum lets us refuse typos and garbage without a
 * database round-trip; it is not a security measure.
 */
export class APIKeyToken {
  private constructor(
    /** The full secret. Show once, never log or store. */
    readonly value: string,
    readonly prefix: string,
    readonly env: APIKeyEnv,
    /** Non-secret display form, e.g. `tg_live_a1B2`. */
    readonly start: string,
  ) {}

  static generate(prefix: string, env: APIKeyEnv): APIKeyToken {
    if (!API_KEY_PREFIX_PATTERN.test(prefix)) {
      throw new Error(`API key prefix must match ${API_KEY_PREFIX_PATTERN}`);
    }
    if (env !== 'live' && env !== 'test') throw new Error('API key env must be live or test');
    const body = `${prefix}_${env}_${randomBase62(RANDOM_LENGTH)}`;
    return APIKeyToken.build(body + encodeChecksum(crc32(body)), prefix, env);
  }

  /** The token, or null when `raw` is not a well-formed key with a valid checksum. Never throws. */
  static parse(raw: string): APIKeyToken | null {
    if (typeof raw !== 'string' || raw.length > MAX_TOKEN_LENGTH) return null;
    const m = TOKEN_SHAPE.exec(raw);
    if (m === null) return null;
    const body = raw.slice(0, raw.length - CHECKSUM_LENGTH);
    if (encodeChecksum(crc32(body)) !== m[4]) return null;
    return APIKeyToken.build(raw, m[1], m[2] as APIKeyEnv);
  }

  private static build(value: string, prefix: string, env: APIKeyEnv): APIKeyToken {
    const randomStart = prefix.length + env.length + 2;
    return new APIKeyToken(value, prefix, env, value.slice(0, randomStart + 4));
  }
}
