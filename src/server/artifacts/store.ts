/** Where an artifact's bytes live in the blob store; its metadata rows are in `src/store/artifacts.ts`. */
export { recordArtifact, listArtifacts, getArtifact } from '../../store/artifacts.js';
export type { Artifact } from '../../store/artifacts.js';

/** Blob key of an artifact's bytes. */
export function artifactKey(buildId: number, path: string): string {
  return `${artifactPrefix(buildId)}${path}`;
}

/** Blob prefix of all artifacts of a build. */
export function artifactPrefix(buildId: number): string {
  return `artifacts/${buildId}/`;
}
