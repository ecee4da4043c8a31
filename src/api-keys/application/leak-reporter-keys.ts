/** The public keys a leak reporter signs its reports with, by identifier (PEM); null when unknown. */
export abstract class LeakReporterKeys {
  abstract publicKey(identifier: string): Promise<string | null>;
}
