import { Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { AppConfig } from '../../config/app-config';

/**
 * Upstream headers (often credentials) are stored encrypted: AES-256-GCM with
 * a key derived (HKDF-SHA256) from the server pepper, so a database dump alone
 * does not reveal them. Format: v1.<iv>.<tag>.<ciphertext>, base64url.
 */
@Injectable()
export class HeaderCipher {
  private readonly key: Buffer;

  constructor(config: AppConfig) {
    this.key = Buffer.from(hkdfSync('sha256', config.apiKeyPepper, 'tollgate', 'upstream-headers-v1', 32));
  }

  encrypt(headers: Record<string, string>): string | null {
    if (Object.keys(headers).length === 0) return null;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(headers), 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  decrypt(value: string | null): Record<string, string> {
    if (!value) return {};
    const [version, iv, tag, data] = value.split('.');
    if (version !== 'v1') throw new Error('Unknown upstream header encryption version');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as Record<string, string>;
  }
}
