import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { APIKeyToken } from '../domain/api-key-token';
import { KeyHasher } from '../domain/key-hasher';

/** Mints and hashes secrets with the configured prefix, environment and pepper. */
@Injectable()
export class APIKeySecrets {
  private readonly hasher: KeyHasher;

  constructor(private readonly config: AppConfig) {
    this.hasher = new KeyHasher(config.apiKeyPepper);
  }

  mint(): { token: APIKeyToken; hash: string } {
    const token = APIKeyToken.generate(this.config.apiKeyPrefix, this.config.apiKeyEnv);
    return { token, hash: this.hasher.hash(token.value) };
  }

  /** The token when `raw` has our prefix and a valid checksum, else null (no database needed). */
  parse(raw: string): APIKeyToken | null {
    const token = APIKeyToken.parse(raw);
    return token && token.prefix === this.config.apiKeyPrefix ? token : null;
  }

  hash(secret: string): string {
    return this.hasher.hash(secret);
  }
}
