import { sql } from 'kysely';
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database } from '../schema.js';

/**
 * Raw rows for tests outside the store, which check what was written (a sealed value, a
 * cancel request) or set up what an older version wrote. Only tests use these: the server
 * goes through the named store functions.
 */

type Table = keyof Database;
type Row<T extends Table> = Selectable<Database[T]>;

/** The rows of `table` whose `column` equals `value`, by id where the table has one. */
export async function rowsWhere<T extends Table>(
  db: Kysely<Database>,
  table: T,
  column: keyof Row<T> & string,
  value: string | number | null,
): Promise<Row<T>[]> {
  const result = await sql<
    Row<T>
  >`select * from ${sql.table(table)} where ${sql.ref(column)} = ${value}`.execute(db);
  return result.rows;
}

/** The one row of `table` whose `column` equals `value`; throws when there is none. */
export async function rowWhere<T extends Table>(
  db: Kysely<Database>,
  table: T,
  column: keyof Row<T> & string,
  value: string | number | null,
): Promise<Row<T>> {
  const [row] = await rowsWhere(db, table, column, value);
  if (row === undefined) throw new Error(`no row in ${table} with ${column} = ${String(value)}`);
  return row;
}

/** How many rows `table` has. */
export async function countRows(db: Kysely<Database>, table: Table): Promise<number> {
  const result = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}

/** Sets columns of the rows of `table` whose `column` equals `value`, as an older version might have. */
export async function updateRowsWhere<T extends Table>(
  db: Kysely<Database>,
  table: T,
  column: keyof Row<T> & string,
  value: string | number | null,
  set: Updateable<Database[T]>,
): Promise<void> {
  const entries = Object.entries(set as Record<string, string | number | null>);
  if (entries.length === 0) return;
  const assignments = sql.join(entries.map(([name, v]) => sql`${sql.ref(name)} = ${v}`));
  await sql`update ${sql.table(table)} set ${assignments} where ${sql.ref(column)} = ${value}`.execute(db);
}
