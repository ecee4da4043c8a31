import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sign } from 'jsonwebtoken';
import type { PermissionScopeJson } from '../../src/api-keys/domain/permission-scope';
import { TEST_JWT_SECRET } from './env';
import type { TestApp } from './create-test-app';

/** Writes plans (PLANS_FILE format) to a fresh file under the run's DATA_DIR and returns its path. */
export function writePlansFile(plans: unknown[]): string {
  const file = join(process.env.DATA_DIR!, `plans-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(plans));
  return file;
}

export type Role = 'admin' | 'developer' | 'auditor' | 'service';

/** A tenant id no other test uses. */
export function uniqueTenant(label = 't'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

export function uniqueName(label = 'key'): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

/** An HS256 management JWT as the test environment's JWT_SECRET signs it. */
export function managementToken(opts: {
  tenantId: string;
  sub?: string;
  roles?: Role[] | string;
  scope?: Partial<PermissionScopeJson>;
  expiresIn?: number;
  secret?: string;
  claims?: Record<string, unknown>;
}): string {
  const payload: Record<string, unknown> = {
    sub: opts.sub ?? 'user-admin',
    tenant_id: opts.tenantId,
    roles: opts.roles ?? ['admin'],
    ...(opts.scope ? { permission_scope: opts.scope } : {}),
    ...(opts.claims ?? {}),
  };
  return sign(payload, opts.secret ?? TEST_JWT_SECRET, { algorithm: 'HS256', expiresIn: opts.expiresIn ?? 600 });
}

export const ALL_TOOLS: Partial<PermissionScopeJson> = { mcp_tool_ids: ['*'] };

/** Creates a key through the real REST API; returns the response body (with the one-time `token`). */
export async function createKey(
  t: TestApp,
  jwt: string,
  body: Record<string, unknown> = {},
): Promise<{ id: string; token: string; [k: string]: any }> {
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    token: jwt,
    body: { name: uniqueName(), permission_scope: ALL_TOOLS, ...body },
  });
  if (res.status !== 201) throw new Error(`createKey failed: ${res.status} ${res.text}`);
  return res.body;
}

/** POST /api/v1/keys/verify */
export async function verifyKey(t: TestApp, jwt: string, body: Record<string, unknown>) {
  return t.request({ method: 'POST', url: '/api/v1/keys/verify', token: jwt, body });
}

/** Puts a tenant on a plan (as the billing webhook would), e.g. so a busy test is not rate limited. */
export async function setPlan(t: TestApp, tenantId: string, plan: string, status: 'active' | 'past_due' | 'canceled' = 'active'): Promise<void> {
  const { SubscriptionsService } = await import('../../src/plans/application/subscriptions.service');
  await t.app.get(SubscriptionsService).change(tenantId, plan, status, { type: 'system', id: 'test' });
}
