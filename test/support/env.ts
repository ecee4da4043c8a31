import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Environment every e2e test app starts from (tests may override per app). */
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';
export const TEST_PEPPER = 'test-pepper-0123456789abcdef';

process.env.NODE_ENV = 'test';
process.env.JWT_SECRET = TEST_JWT_SECRET;
process.env.API_KEY_PEPPER = TEST_PEPPER;
process.env.PUBLIC_URL = 'http://tollgate.test';
process.env.DATA_DIR = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
process.env.LOG_LEVEL = 'silent';
// Public routes are limited per IP; every test app talks from 127.0.0.1 (and shares Redis in CI).
process.env.ANONYMOUS_RATE_LIMIT = '1000000';
