/**
 * Step caches' rows (the archives are in the blob store): lookup by exact key then by prefix,
 * on the build's branch then the default branch; least-recently-used eviction per project.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { StoreError } from './errors.js';

export interface CacheRow {
  id: number;
  projectId: number;
  branch: string;
  key: string;
  blobKey: string;
  size: number;
  createdAt: number;
  lastUsedAt: number;
}

export interface CacheHit {
  cache: CacheRow;
  /** The exact key was found (then nothing is saved after the step). */
  exact: boolean;
}

type Row = Database['caches'] extends infer T ? { [K in keyof T]: unknown } : never;

function toRow(r: Row): CacheRow {
  return {
    id: Number(r.id),
    projectId: Number(r.project_id),
    branch: String(r.branch),
    key: String(r.key),
    blobKey: String(r.blob_key),
    size: Number(r.size),
    createdAt: Number(r.created_at),
    lastUsedAt: Number(r.last_used_at),
  };
}

/**
 * The cache a step restores: `key` exactly on each of `branches` in order, else for each
 * prefix of `restoreKeys` in order the newest cache on each branch whose key starts with it
 * (GitHub Actions' order). Undefined on a miss.
 */
export async function findCache(
  db: Kysely<Database>,
  projectId: number,
  branches: readonly string[],
  key: string,
  restoreKeys: readonly string[],
): Promise<CacheHit | undefined> {
  for (const branch of branches) {
    const row = await db
      .selectFrom('caches')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('branch', '=', branch)
      .where('key', '=', key)
      .executeTakeFirst();
    if (row) return { cache: toRow(row), exact: true };
  }
  for (const prefix of restoreKeys) {
    for (const branch of branches) {
      // substr, not LIKE: a key may hold `_`, LIKE's wildcard.
      const row = await db
        .selectFrom('caches')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('branch', '=', branch)
        .where(sql<string>`substr(key, 1, ${prefix.length})`, '=', prefix)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (row) return { cache: toRow(row), exact: false };
    }
  }
  return undefined;
}

/** Marks a cache used now (a restore), for the LRU order. */
export async function touchCache(db: Kysely<Database>, id: number, now: number): Promise<void> {
  await db.updateTable('caches').set({ last_used_at: now }).where('id', '=', id).execute();
}

/**
 * Records a saved archive. Undefined when the project and branch have the key already (two
 * builds saved it at once): the caller removes its own blob, the first one stays.
 */
export async function insertCache(
  db: Kysely<Database>,
  input: { projectId: number; branch: string; key: string; blobKey: string; size: number; now: number },
): Promise<CacheRow | undefined> {
  const row = await db
    .insertInto('caches')
    .values({
      project_id: input.projectId,
      branch: input.branch,
      key: input.key,
      blob_key: input.blobKey,
      size: input.size,
      created_at: input.now,
      last_used_at: input.now,
    })
    .onConflict((oc) => oc.columns(['project_id', 'branch', 'key']).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row && toRow(row);
}

export interface CacheLimits {
  /** Bytes of archives one project may keep. */
  maxProjectBytes: number;
  /** A cache not used for this long is removed. */
  maxAgeMs: number;
}

/**
 * Removes the project's caches not used within `maxAgeMs`, then the least recently used ones
 * until the rest fit in `maxProjectBytes`. Resolves with the removed rows (their blobs are the
 * caller's to delete).
 */
export async function evictCaches(
  db: Kysely<Database>,
  projectId: number,
  limits: CacheLimits,
  now: number,
): Promise<CacheRow[]> {
  const rows = (
    await db
      .selectFrom('caches')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('last_used_at', 'desc')
      .orderBy('id', 'desc')
      .execute()
  ).map(toRow);
  const evicted: CacheRow[] = [];
  let total = 0;
  for (const row of rows) {
    total += row.size;
    if (row.lastUsedAt < now - limits.maxAgeMs || total > limits.maxProjectBytes) evicted.push(row);
  }
  if (evicted.length > 0) {
    await db
      .deleteFrom('caches')
      .where(
        'id',
        'in',
        evicted.map((r) => r.id),
      )
      .execute();
  }
  return evicted;
}

/** A project's caches, most recently used first. */
export async function listCaches(db: Kysely<Database>, projectId: number): Promise<CacheRow[]> {
  const rows = await db
    .selectFrom('caches')
    .selectAll()
    .where('project_id', '=', projectId)
    .orderBy('last_used_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toRow);
}

/**
 * Deletes caches of a project: one by id, those with a key, or all of them. Resolves with the
 * rows removed; `not_found` when an id or key names none.
 */
export async function deleteCaches(
  db: Kysely<Database>,
  projectId: number,
  which: { id: number } | { key: string } | 'all',
): Promise<CacheRow[]> {
  let query = db.deleteFrom('caches').where('project_id', '=', projectId);
  if (which !== 'all') {
    query = 'id' in which ? query.where('id', '=', which.id) : query.where('key', '=', which.key);
  }
  const rows = (await query.returningAll().execute()).map(toRow);
  if (rows.length === 0 && which !== 'all') {
    const what = 'id' in which ? `id ${which.id}` : `key ${JSON.stringify(which.key)}`;
    throw new StoreError('not_found', `project ${projectId} has no cache with ${what}`, {
      details: { projectId },
    });
  }
  return rows;
}

/** Whether the project exists (its caches' archives are removed once it does not). */
export async function projectExists(db: Kysely<Database>, id: number): Promise<boolean> {
  return (await db.selectFrom('projects').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}
