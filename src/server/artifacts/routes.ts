import { basename } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../../blobs/types.js';
import { artifactPathProblem } from '../../executors/workspace-files.js';
import type { Database } from '../../store/index.js';
import { VIEWER, buildOr404 } from '../api/context.js';
import type { App } from '../api/context.js';
import { HttpError, notFound } from '../api/errors.js';
import { ArtifactSchema, IdParams } from '../api/schemas.js';
import { artifactKey, getArtifact, listArtifacts } from './store.js';

export interface ArtifactRouteDeps {
  db: Kysely<Database>;
  blobs: BlobStore;
}

const tags = ['artifacts'];

/** The API's shape of an artifact (src/contract/dto.ts). */
export { ArtifactSchema };
export type { Artifact as ArtifactDto } from '../../contract/dto.js';

const DownloadParams = Type.Object({
  id: IdParams.properties.id,
  '*': Type.String({ description: 'The artifact path' }),
});

/**
 * Artifacts API, registered inside the `/api/v1` prefix: a build's list, and one artifact's
 * bytes streamed from the blob store (never buffered). Only paths recorded for the build are
 * served, so the download route cannot be turned into a read of other blob keys.
 */
export function registerArtifactRoutes(api: App, deps: ArtifactRouteDeps): void {
  const { db, blobs } = deps;

  api.get(
    '/builds/:id/artifacts',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'Files the steps of a build published',
        params: IdParams,
        response: { 200: Type.Array(ArtifactSchema) },
      },
    },
    async (request) => {
      const build = await buildOr404(db, request.params.id);
      return (await listArtifacts(db, build.id)).map((a) => ({
        path: a.path,
        size: a.size,
        sha256: a.sha256,
        step: a.step,
        createdAt: new Date(a.createdAt).toISOString(),
      }));
    },
  );

  api.get(
    '/builds/:id/artifacts/*',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "Download one artifact's bytes",
        description: 'The path follows `artifacts/`, each segment URL-encoded. `Digest` carries the SHA-256.',
        params: DownloadParams,
        response: {
          200: {
            description: 'The bytes',
            content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } },
          },
        },
      },
    },
    async (request, reply) => {
      const build = await buildOr404(db, request.params.id);
      const path = request.params['*'];
      const problem = artifactPathProblem(path);
      if (problem !== undefined)
        throw new HttpError(400, 'invalid_request', `artifact path "${path}": ${problem}`);
      const artifact = await getArtifact(db, build.id, path);
      if (artifact === undefined)
        throw notFound(`artifact ${path} of build ${build.projectSlug} #${build.number}`);
      const body = await blobs.get(artifactKey(artifact.blobBuildId ?? build.id, path));
      if (body === undefined) {
        throw new HttpError(
          410,
          'not_found',
          `artifact ${path} of build ${build.projectSlug} #${build.number} is recorded but its bytes are gone from the blob store`,
        );
      }
      const name = basename(path);
      return reply
        .type('application/octet-stream')
        .headers({
          'content-length': String(artifact.size),
          'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
          digest: `sha-256=${Buffer.from(artifact.sha256, 'hex').toString('base64')}`,
          etag: `"${artifact.sha256}"`,
          'x-content-type-options': 'nosniff',
          'x-slipway-sha256': artifact.sha256,
        })
        .send(body as unknown as string);
    },
  );
}
