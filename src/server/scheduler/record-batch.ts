import type { Kysely } from 'kysely';
import { writeTransaction, type Database } from '../../store/index.js';

type Write = (trx: Kysely<Database>) => Promise<unknown>;

interface Queued {
  write: Write;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * A build's record writes, applied in the order they were added, several to a transaction: the
 * writes added while one transaction runs (or in the same turn of the event loop: a step and its
 * stage ending together) go into the next one, so one state change of a build costs one commit,
 * and readers see its records change all at once. The transactions are `relaxed` (see
 * `WriteOptions`): a build's progress is what reconciliation rebuilds after a power cut.
 *
 * A failed transaction fails every write in it (each caller gets the error) and the next batch
 * is tried on its own.
 */
export class RecordBatch {
  private pending: Queued[] = [];
  private draining: Promise<void> | undefined;

  constructor(private readonly db: Kysely<Database>) {}

  /** Queues `write`; resolves with its result once the transaction holding it has committed. */
  add<T>(write: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ write, resolve: resolve as (value: unknown) => void, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves once every write added so far has been committed or has failed. */
  async settled(): Promise<void> {
    while (this.draining !== undefined) await this.draining;
  }

  private async drain(): Promise<void> {
    // The other events of the same moment join this transaction.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        const results = await writeTransaction(
          this.db,
          async (trx) => {
            const out: unknown[] = [];
            for (const queued of batch) out.push(await queued.write(trx));
            return out;
          },
          { durability: 'relaxed' },
        );
        batch.forEach((queued, i) => queued.resolve(results[i]));
      } catch (error) {
        for (const queued of batch) queued.reject(error);
      }
    }
    this.draining = undefined;
  }
}
