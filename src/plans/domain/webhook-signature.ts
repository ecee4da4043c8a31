/** The signature scheme is shared by the billing webhook (in) and alert webhooks (out). */
export { signPayload, verifySignature, SIGNATURE_TOLERANCE_SECONDS } from '../../shared/domain/webhook-signature';
export type { SignatureCheck } from '../../shared/domain/webhook-signature';
