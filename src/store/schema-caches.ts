import type { Generated } from 'kysely';

/** Table of migration `0019_caches`; read and written by `caches.ts`. */
export interface CachesTable {
  id: Generated<number>;
  project_id: number;
  /** The branch of the build that saved it (pull requests: their target's cache is read). */
  branch: string;
  key: string;
  /** Where the archive is in the blob store. */
  blob_key: string;
  /** Bytes of the compressed archive. */
  size: number;
  created_at: number;
  /** A restore counts as a use: eviction takes the least recently used first. */
  last_used_at: number;
}
