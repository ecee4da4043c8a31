import { Injectable, Logger } from '@nestjs/common';
import { createHash, verify as verifySignature } from 'node:crypto';
import { AppConfig } from '../../config/app-config';
import type { RequestMeta } from '../../shared/domain/actor';
import { DomainError, NotFoundError } from '../../shared/domain/domain-error';
import { parseLeakReport } from '../domain/leak-report';
import { APIKeysService } from './api-keys.service';
import { LeakReporterKeys } from './leak-reporter-keys';

/** GitHub's answer format for a partner: one label per reported token, by its SHA-256 (the raw token is never echoed). */
export interface LeakReportResult {
  token_hash: string;
  token_type: string;
  label: 'true_positive' | 'false_positive';
}

/**
 * K9: POST /api/v1/keys/leaks, the GitHub secret-scanning partner protocol.
 * The report is authenticated by an ECDSA P-256 / SHA-256 signature of the raw
 * body (`Github-Public-Key-Signature`, base64) under the reporter's public key
 * named by `Github-Public-Key-Identifier`. Every reported secret that is one
 * of our keys is disabled at once on every replica, audited (`api_key.leaked`)
 * and alerted (`key.leaked`); the answer labels each token, by hash.
 */
@Injectable()
export class LeakReportsService {
  private readonly logger = new Logger(LeakReportsService.name);

  constructor(
    private readonly config: AppConfig,
    private readonly reporterKeys: LeakReporterKeys,
    private readonly keys: APIKeysService,
  ) {}

  async handle(identifier: string | undefined, signature: string | undefined, rawBody: Buffer | undefined, request: RequestMeta): Promise<LeakReportResult[]> {
    if (!this.config.leakReportKeysUrl) throw new NotFoundError('The leak report endpoint (LEAK_REPORT_KEYS_URL is not set)');
    if (!identifier || !signature) throw new DomainError('unauthenticated', 'Leak report refused: the Github-Public-Key-Identifier and Github-Public-Key-Signature headers are required.');
    const lookup = await this.reporterKeys.publicKey(identifier);
    if (!lookup.key) {
      if (lookup.retryAfterSeconds !== null) {
        throw new DomainError('service_unavailable', 'Leak report deferred: this signing key identifier is not known yet; retry later.', { retry_after: lookup.retryAfterSeconds });
      }
      throw new DomainError('unauthenticated', 'Leak report refused: unknown signing key identifier.');
    }
    const body = rawBody ?? Buffer.alloc(0);
    let valid = false;
    try {
      valid = verifySignature('sha256', body, lookup.key, Buffer.from(signature, 'base64'));
    } catch {
      valid = false; // a malformed signature (or key) is a refusal like a wrong one
    }
    if (!valid) throw new DomainError('unauthenticated', 'Leak report refused: the signature does not match.');

    const results: LeakReportResult[] = [];
    for (const reported of parseLeakReport(body)) {
      const outcome = await this.keys.disableLeaked(reported.token, reported, request);
      results.push({ token_hash: createHash('sha256').update(reported.token).digest('hex'), token_type: reported.type, label: outcome ? 'true_positive' : 'false_positive' });
      if (outcome) {
        const { key, disabled } = outcome;
        this.logger.warn(`API key ${key.id} of tenant ${key.tenantId} reported as leaked (${reported.url ?? 'no url'}); ${disabled ? 'disabled' : 'already not active'}`);
      }
    }
    return results;
  }
}
