import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import { dialectOf } from './db.js';
import type { Database } from './schema.js';

/** A value of a kept query's first compilation, standing for the caller's value at `index`. */
class Slot {
  constructor(readonly index: number) {}
}

interface Kept {
  sql: string;
  /** For each parameter of `sql`, in order: the index of the caller's value it takes. */
  order: number[];
}

const kept = new Map<string, Kept>();
const MAX_KEPT = 1000;

/**
 * Runs a query of the store's hot paths (a build read, a step's record, the scheduler's reads)
 * without building and compiling it again each time: Kysely builds an immutable tree per query
 * and walks it to SQL, which costs more main-thread time than SQLite takes to run most of ours.
 * The SQL text is made once per dialect and `key`, from `build` called with stand-ins for
 * `values`; after that only the values change. `key` must name everything the text depends on
 * besides the values (the length of an `in` list, which columns are set). `build` must put each
 * value into the query as a parameter, unchanged.
 */
export async function runKept<R, const V extends readonly unknown[]>(
  db: Kysely<Database>,
  key: string,
  values: V,
  // `never`: a stand-in goes where the builder wants a value of the column's type.
  build: (slots: { [K in keyof V]: never }) => Compilable<R>,
): Promise<{ rows: R[]; numAffectedRows?: bigint }> {
  const cacheKey = `${dialectOf(db)}\u0000${key}`;
  let query = kept.get(cacheKey);
  if (query === undefined) {
    // The stand-ins are objects no caller passes, so each parameter's place is known for sure.
    const slots = values.map((_, i) => new Slot(i)) as unknown as { [K in keyof V]: never };
    const compiled = build(slots).compile();
    const order = compiled.parameters.map((p) => {
      if (!(p instanceof Slot)) throw new Error(`kept query ${key}: a parameter not from its values`);
      return p.index;
    });
    query = { sql: compiled.sql, order };
    // Keys are the store's own; one per `in` length at most: a bound against a mistake.
    if (kept.size >= MAX_KEPT) kept.clear();
    kept.set(cacheKey, query);
  }
  const result = await db.executeQuery<R>(
    CompiledQuery.raw(
      query.sql,
      query.order.map((i) => values[i]),
    ),
  );
  return result;
}
