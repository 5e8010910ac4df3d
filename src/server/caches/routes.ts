import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { CacheDeletedSchema, CacheSchema, type Cache } from '../../contract/caches.js';
import { listCaches, type CacheRow } from '../../store/caches.js';
import type { Database } from '../../store/index.js';
import { isStoreError } from '../../store/errors.js';
import { MEMBER, VIEWER, projectOr404, type App } from '../api/context.js';
import { HttpError, notFound } from '../api/errors.js';
import { ApiErrorSchema } from '../api/schemas.js';
import type { CacheService } from './service.js';

export interface CacheRouteDeps {
  db: Kysely<Database>;
  caches: CacheService;
}

const tags = ['caches'];
const ProjectParams = Type.Object({ owner: Type.String(), name: Type.String() });
const CacheParams = Type.Object({
  owner: Type.String(),
  name: Type.String(),
  id: Type.Integer({ minimum: 1 }),
});
const DeleteQuery = Type.Object({
  key: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'Delete the caches with this key (every branch)',
    }),
  ),
  all: Type.Optional(Type.Boolean({ description: 'Delete all caches of the project' })),
});
const errors = { '4xx': ApiErrorSchema };

function dto(row: CacheRow): Cache {
  return {
    id: row.id,
    key: row.key,
    branch: row.branch,
    size: row.size,
    createdAt: new Date(row.createdAt).toISOString(),
    lastUsedAt: new Date(row.lastUsedAt).toISOString(),
  };
}

/**
 * Step caches of a project, inside `/api/v1`: listing needs a viewer, deleting a member (who
 * may run builds that write them anyway). Deleting removes the rows, then the archives.
 */
export function registerCacheRoutes(api: App, deps: CacheRouteDeps): void {
  const { db, caches } = deps;
  const removed = (rows: CacheRow[]) => ({
    deleted: rows.length,
    bytes: rows.reduce((n, r) => n + r.size, 0),
  });

  api.get(
    '/projects/:owner/:name/caches',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's step caches, most recently used first",
        params: ProjectParams,
        response: { 200: Type.Array(CacheSchema), ...errors },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return (await listCaches(db, project.id)).map(dto);
    },
  );

  api.delete(
    '/projects/:owner/:name/caches/:id',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Delete one step cache',
        params: CacheParams,
        response: { 200: CacheDeletedSchema, ...errors },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      try {
        return removed(await caches.remove(project.id, { id: request.params.id }));
      } catch (error) {
        if (isStoreError(error, 'not_found')) throw notFound(`cache ${request.params.id} of ${project.slug}`);
        throw error;
      }
    },
  );

  api.delete(
    '/projects/:owner/:name/caches',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Delete the step caches with a key, or all of them',
        params: ProjectParams,
        querystring: DeleteQuery,
        response: { 200: CacheDeletedSchema, ...errors },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const { key, all } = request.query;
      if ((key === undefined) === (all !== true))
        throw new HttpError(400, 'invalid_request', 'give either ?key=KEY or ?all=true');
      try {
        return removed(await caches.remove(project.id, key === undefined ? 'all' : { key }));
      } catch (error) {
        if (isStoreError(error, 'not_found'))
          throw notFound(`cache with key ${JSON.stringify(key)} of ${project.slug}`);
        throw error;
      }
    },
  );
}
