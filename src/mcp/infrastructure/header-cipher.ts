import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { SecretBox } from '../../shared/crypto/secret-box';

/** Upstream headers (often credentials) are stored encrypted (see SecretBox). */
@Injectable()
export class HeaderCipher {
  private readonly box: SecretBox;

  constructor(config: AppConfig) {
    this.box = new SecretBox(config.apiKeyPepper, 'upstream-headers-v1');
  }

  encrypt(headers: Record<string, string>): string | null {
    return Object.keys(headers).length === 0 ? null : this.box.seal(JSON.stringify(headers));
  }

  decrypt(value: string | null): Record<string, string> {
    return value ? (JSON.parse(this.box.open(value)) as Record<string, string>) : {};
  }
}
