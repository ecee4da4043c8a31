/** Who did something, as recorded in the audit log (L1). */
export type ActorType = 'user' | 'api_key' | 'service' | 'system';

export interface Actor {
  type: ActorType;
  id: string;
}

/** Where a request came from; attached to audit events. Never holds a credential. */
export interface RequestMeta {
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
}
