import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A published artifact's metadata; its bytes are in the blob store at `artifactKey` (`src/server/artifacts`). */
export interface Artifact {
  buildId: number;
  /** `stage/step` that published it. */
  step: string;
  path: string;
  size: number;
  sha256: string;
  createdAt: number;
  /** A reused step's artifact (re-run failed): the build whose blob prefix holds the bytes. */
  blobBuildId?: number;
}

/** Records an artifact after its bytes are stored; a second publish of the same path replaces the row. */
export async function recordArtifact(db: Kysely<Database>, artifact: Artifact): Promise<void> {
  const values = {
    build_id: artifact.buildId,
    step: artifact.step,
    path: artifact.path,
    size: artifact.size,
    sha256: artifact.sha256,
    created_at: artifact.createdAt,
  };
  await db
    .insertInto('artifacts')
    .values(values)
    .onConflict((oc) =>
      oc.columns(['build_id', 'path']).doUpdateSet({
        step: values.step,
        size: values.size,
        sha256: values.sha256,
        created_at: values.created_at,
        // Published here again: the bytes are this build's own now.
        blob_build_id: null,
      }),
    )
    .execute();
}

export async function listArtifacts(db: Kysely<Database>, buildId: number): Promise<Artifact[]> {
  const rows = await db
    .selectFrom('artifacts')
    .selectAll()
    .where('build_id', '=', buildId)
    .orderBy('path')
    .execute();
  return rows.map(toArtifact);
}

export async function getArtifact(
  db: Kysely<Database>,
  buildId: number,
  path: string,
): Promise<Artifact | undefined> {
  const row = await db
    .selectFrom('artifacts')
    .selectAll()
    .where('build_id', '=', buildId)
    .where('path', '=', path)
    .executeTakeFirst();
  return row && toArtifact(row);
}

function toArtifact(row: {
  build_id: number;
  step: string;
  path: string;
  size: number;
  sha256: string;
  created_at: number;
  blob_build_id?: number | null;
}): Artifact {
  return {
    buildId: row.build_id,
    step: row.step,
    path: row.path,
    size: Number(row.size),
    sha256: row.sha256,
    createdAt: Number(row.created_at),
    ...(row.blob_build_id != null && Number(row.blob_build_id) !== Number(row.build_id)
      ? { blobBuildId: Number(row.blob_build_id) }
      : {}),
  };
}
