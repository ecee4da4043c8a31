/**
 * An open database transaction, opaque above the infrastructure layer.
 * Application services pass it to every repository that must commit together
 * (a key change and its audit row, for instance).
 */
export interface TransactionContext {
  readonly __transaction: true;
}

/** Port: runs `work` in one transaction, committed when it resolves, rolled back when it throws. */
export abstract class UnitOfWork {
  abstract run<T>(work: (tx: TransactionContext) => Promise<T>): Promise<T>;
}
