import { createHash } from 'node:crypto';

/**
 * The id an OAuth caller is counted under wherever an API key id would be
 * (rate-limit buckets, usage_buckets.key_id and credit_transactions.key_id,
 * both `uuid` columns): SHA-256 of issuer and subject, laid out as an RFC 9562
 * version-8 (custom) UUID. Deterministic, so a subject keeps its buckets
 * across tokens and replicas; it can never equal a random (v4) API key id.
 */
export function oauthSubjectKeyId(issuer: string, subject: string): string {
  const b = createHash('sha256').update(`oauth\0${issuer}\0${subject}`).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
