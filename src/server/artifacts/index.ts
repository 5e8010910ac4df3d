/**
 * Artifacts: files that steps publish with `artifacts:` globs, collected from the workspace
 * after each successful step into the blob store (`artifacts/<buildId>/<path>`), recorded in
 * the `artifacts` table, listed and downloaded through the API and `slipway artifacts`.
 */
export {
  createArtifactCollector,
  collectArtifacts,
  BuildArtifacts,
  DEFAULT_ARTIFACT_LIMITS,
} from './collector.js';
export type {
  ArtifactCollector,
  ArtifactDeps,
  ArtifactLimits,
  ArtifactLog,
  CollectResult,
} from './collector.js';
export { registerArtifactRoutes, ArtifactSchema } from './routes.js';
export type { ArtifactRouteDeps, ArtifactDto } from './routes.js';
export { artifactKey, artifactPrefix, listArtifacts, getArtifact, recordArtifact } from './store.js';
export type { Artifact } from './store.js';
