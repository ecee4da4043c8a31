import { FieldError, ValidationFailedError } from '../../shared/domain/domain-error';
import { KeyStateError } from './api-key.errors';
import { PermissionScope } from './permission-scope';

export type APIKeyStatus = 'active' | 'disabled' | 'expired' | 'revoked';

export interface APIKeyProps {
  id: string;
  tenantId: string;
  userId: string;
  name: string;
  /** Peppered hash of the secret; the secret itself is never stored. */
  keyHash: string;
  /** Non-secret display form, e.g. `tg_live_a1B2`. */
  start: string;
  scope: PermissionScope;
  enabled: boolean;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  rotatedFromId: string | null;
  /** Set when this key was rotated away: it keeps working until then. */
  graceUntil: Date | null;
  metadata: Record<string, unknown>;
  /** Most credits this key may spend per calendar month (UTC); null = no cap beyond the tenant's balance. */
  monthlyCreditCap: number | null;
  /**
   * The first key of this key's rotation chain (absent: this key's own id).
   * The monthly credit cap counts the chain's spend: a rotation carries on
   * the month's spend, it does not start the cap again.
   */
  lineageId?: string;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string;
}

export interface CreateAPIKeyInput {
  id: string;
  tenantId: string;
  userId: string;
  name: string;
  keyHash: string;
  start: string;
  scope: PermissionScope;
  expiresAt: Date | null;
  metadata: Record<string, unknown>;
  createdBy: string;
  rotatedFromId?: string | null;
  monthlyCreditCap?: number | null;
}

export interface RotatedKeyInput {
  id: string;
  keyHash: string;
  start: string;
}

export const MAX_KEY_NAME_LENGTH = 100;

function nameError(name: string): FieldError | null {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (trimmed.length === 0) return { field: 'name', message: 'must not be empty' };
  if (trimmed.length > MAX_KEY_NAME_LENGTH) {
    return { field: 'name', message: `must be at most ${MAX_KEY_NAME_LENGTH} characters` };
  }
  return null;
}

function expiryError(expiresAt: Date | null, now: Date): FieldError | null {
  if (expiresAt === null) return null;
  if (Number.isNaN(expiresAt.getTime())) return { field: 'expires_at', message: 'must be a valid date' };
  if (expiresAt.getTime() <= now.getTime()) return { field: 'expires_at', message: 'must be in the future' };
  return null;
}

/** Largest cap accepted: a safe integer that also fits the bigint column. */
export const MAX_MONTHLY_CREDIT_CAP = Number.MAX_SAFE_INTEGER;

function creditCapError(cap: number | null): FieldError | null {
  if (cap === null) return null;
  if (typeof cap !== 'number' || !Number.isSafeInteger(cap) || cap < 0) {
    return { field: 'monthly_credit_cap', message: 'must be a non-negative integer or null' };
  }
  return null;
}

function throwIfAny(errors: (FieldError | null)[]): void {
  const present = errors.filter((e): e is FieldError => e !== null);
  if (present.length > 0) throw new ValidationFailedError(present);
}

const copyDate = (d: Date | null): Date | null => (d === null ? null : new Date(d.getTime()));
const reached = (at: Date | null, now: Date): boolean => at !== null && at.getTime() <= now.getTime();

/** An API key as the domain sees it. No ORM; the adapter maps rows with restore()/toProps(). */
export class APIKey {
  private constructor(private props: APIKeyProps) {}

  static create(input: CreateAPIKeyInput, now: Date): APIKey {
    const cap = input.monthlyCreditCap ?? null;
    throwIfAny([nameError(input.name), expiryError(input.expiresAt, now), creditCapError(cap)]);
    return new APIKey({
      id: input.id,
      tenantId: input.tenantId,
      userId: input.userId,
      name: input.name.trim(),
      keyHash: input.keyHash,
      start: input.start,
      scope: input.scope,
      enabled: true,
      expiresAt: copyDate(input.expiresAt),
      revokedAt: null,
      lastUsedAt: null,
      rotatedFromId: input.rotatedFromId ?? null,
      graceUntil: null,
      metadata: { ...input.metadata },
      monthlyCreditCap: cap,
      createdAt: new Date(now.getTime()),
      updatedAt: new Date(now.getTime()),
      createdBy: input.createdBy,
    });
  }

  /** Rebuild from persistence; no rules are re-checked (an expired key is still a key). */
  static restore(props: APIKeyProps): APIKey {
    return new APIKey({ ...props, metadata: { ...props.metadata } });
  }

  toProps(): APIKeyProps {
    return { ...this.props, metadata: { ...this.props.metadata } };
  }

  get id(): string { return this.props.id; }
  get tenantId(): string { return this.props.tenantId; }
  get userId(): string { return this.props.userId; }
  get name(): string { return this.props.name; }
  get keyHash(): string { return this.props.keyHash; }
  get start(): string { return this.props.start; }
  get scope(): PermissionScope { return this.props.scope; }
  get enabled(): boolean { return this.props.enabled; }
  get expiresAt(): Date | null { return this.props.expiresAt; }
  get revokedAt(): Date | null { return this.props.revokedAt; }
  get lastUsedAt(): Date | null { return this.props.lastUsedAt; }
  get rotatedFromId(): string | null { return this.props.rotatedFromId; }
  get graceUntil(): Date | null { return this.props.graceUntil; }
  get metadata(): Record<string, unknown> { return { ...this.props.metadata }; }
  get createdAt(): Date { return this.props.createdAt; }
  get updatedAt(): Date { return this.props.updatedAt; }
  get createdBy(): string { return this.props.createdBy; }
  get monthlyCreditCap(): number | null { return this.props.monthlyCreditCap; }
  get lineageId(): string { return this.props.lineageId ?? this.props.id; }

  /** Rotated away, and its grace period still running: its secret works, on borrowed time. */
  inGrace(now: Date): boolean {
    return this.props.graceUntil !== null && !reached(this.props.graceUntil, now) && this.props.revokedAt === null;
  }

  /** Ends the rotation grace period now (the key is then `expired`); false when it was not in grace. */
  endGrace(now: Date): boolean {
    if (!this.inGrace(now)) return false;
    this.props.graceUntil = new Date(now.getTime());
    this.stamp(now);
    return true;
  }

  /** Precedence: revoked > expired (expiry or end of rotation grace) > disabled > active. */
  status(now: Date): APIKeyStatus {
    if (reached(this.props.revokedAt, now)) return 'revoked';
    if (reached(this.props.expiresAt, now) || reached(this.props.graceUntil, now)) return 'expired';
    if (!this.props.enabled) return 'disabled';
    return 'active';
  }

  /** Not revoked and not expired (a disabled key can still be enabled, rotated, ...). */
  isLive(now: Date): boolean {
    const s = this.status(now);
    return s === 'active' || s === 'disabled';
  }

  disable(now: Date): void {
    this.props.enabled = false;
    this.stamp(now);
  }

  enable(now: Date): void {
    const s = this.status(now);
    if (s === 'revoked' || s === 'expired') {
      throw new KeyStateError(`The API key is ${s} and cannot be enabled.`);
    }
    this.props.enabled = true;
    this.stamp(now);
  }

  /** Idempotent: a second revoke keeps the first revokedAt. */
  revoke(now: Date): void {
    if (this.props.revokedAt !== null) return;
    this.props.revokedAt = new Date(now.getTime());
    this.stamp(now);
  }

  rename(name: string, now: Date): void {
    throwIfAny([nameError(name)]);
    this.props.name = name.trim();
    this.stamp(now);
  }

  changeScope(scope: PermissionScope, now: Date): void {
    this.props.scope = scope;
    this.stamp(now);
  }

  changeExpiry(expiresAt: Date | null, now: Date): void {
    throwIfAny([expiryError(expiresAt, now)]);
    this.props.expiresAt = copyDate(expiresAt);
    this.stamp(now);
  }

  replaceMetadata(metadata: Record<string, unknown>, now: Date): void {
    this.props.metadata = { ...metadata };
    this.stamp(now);
  }

  /** null lifts the cap; a cap below what the key already spent this month refuses its next priced call. */
  changeCreditCap(cap: number | null, now: Date): void {
    throwIfAny([creditCapError(cap)]);
    this.props.monthlyCreditCap = cap;
    this.stamp(now);
  }

  /** Records use; deliberately leaves updatedAt alone. */
  touch(now: Date): void {
    this.props.lastUsedAt = new Date(now.getTime());
  }

  /**
   * Issue the successor of this key. This key keeps working for `graceSeconds`
   * (0 = it dies now); the successor inherits everything but the secret.
   */
  rotate(next: RotatedKeyInput, graceSeconds: number, now: Date): APIKey {
    if (!Number.isFinite(graceSeconds) || graceSeconds < 0) {
      throw new ValidationFailedError([
        { field: 'grace_period_seconds', message: 'must be a non-negative number of seconds' },
      ]);
    }
    const s = this.status(now);
    if (s !== 'active' && s !== 'disabled') {
      throw new KeyStateError(`The API key is ${s} and cannot be rotated.`);
    }
    if (this.props.graceUntil !== null) {
      throw new KeyStateError('This API key has already been rotated.');
    }
    this.props.graceUntil = new Date(now.getTime() + graceSeconds * 1000);
    this.stamp(now);
    return new APIKey({
      id: next.id,
      tenantId: this.props.tenantId,
      userId: this.props.userId,
      name: this.props.name,
      keyHash: next.keyHash,
      start: next.start,
      scope: this.props.scope,
      enabled: this.props.enabled,
      expiresAt: copyDate(this.props.expiresAt),
      revokedAt: null,
      lastUsedAt: null,
      rotatedFromId: this.props.id,
      graceUntil: null,
      metadata: { ...this.props.metadata },
      monthlyCreditCap: this.props.monthlyCreditCap,
      lineageId: this.lineageId,
      createdAt: new Date(now.getTime()),
      updatedAt: new Date(now.getTime()),
      createdBy: this.props.createdBy,
    });
  }

  private stamp(now: Date): void {
    this.props.updatedAt = new Date(now.getTime());
  }
}
