import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { TransactionContext, UnitOfWork } from '../shared/domain/unit-of-work';

class TypeOrmTransaction implements TransactionContext {
  readonly __transaction = true as const;
  constructor(readonly manager: EntityManager) {}
}

/** The EntityManager of `tx` when given, else the pool's default manager. */
export function managerOf(dataSource: DataSource, tx?: TransactionContext): EntityManager {
  if (tx === undefined) return dataSource.manager;
  if (!(tx instanceof TypeOrmTransaction)) throw new Error('Foreign transaction context');
  return tx.manager;
}

@Injectable()
export class TypeOrmUnitOfWork extends UnitOfWork {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  run<T>(work: (tx: TransactionContext) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new TypeOrmTransaction(manager)));
  }
}
