import { InitialSchema1764230400000 } from './1764230400000-InitialSchema';
import { McpServers1764316800000 } from './1764316800000-McpServers';
import { AuditHashChain1764403200000 } from './1764403200000-AuditHashChain';
import { PlansCreditsUsage1764489600000 } from './1764489600000-PlansCreditsUsage';
import { Alerts1764576000000 } from './1764576000000-Alerts';
import { AdmitFunction1764662400000 } from './1764662400000-AdmitFunction';
import { KeyCreditCap1764748800000 } from './1764748800000-KeyCreditCap';
import { AdmitBatch1764835200000 } from './1764835200000-AdmitBatch';
import { KeyHashLookupIndex1764921600000 } from './1764921600000-KeyHashLookupIndex';
import { KeySpendByLineage1765008000000 } from './1765008000000-KeySpendByLineage';

/**
 * Every migration, in order. Listed explicitly (not globbed) so the same list
 * loads from ts-jest, ts-node and the compiled dist/ alike.
 */
export const MIGRATIONS = [
  InitialSchema1764230400000,
  McpServers1764316800000,
  AuditHashChain1764403200000,
  PlansCreditsUsage1764489600000,
  Alerts1764576000000,
  AdmitFunction1764662400000,
  KeyCreditCap1764748800000,
  AdmitBatch1764835200000,
  KeyHashLookupIndex1764921600000,
  KeySpendByLineage1765008000000,
];
