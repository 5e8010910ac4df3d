/**
 * Step caches of a project, as the API shows them, with the calls the CLI makes:
 *   GET    /projects/{owner}/{name}/caches              → Cache[]                viewer
 *   DELETE /projects/{owner}/{name}/caches/{id}         → CacheDeleted           member
 *   DELETE /projects/{owner}/{name}/caches?key=K        → CacheDeleted (every branch's K)
 *   DELETE /projects/{owner}/{name}/caches?all=true     → CacheDeleted (all of them)
 */
import { Type, type Static } from '@sinclair/typebox';
import { projectPath, type Endpoint } from './api.js';

const Time = Type.String({ format: 'date-time' });

export const CacheSchema = Type.Object(
  {
    id: Type.Integer(),
    key: Type.String(),
    branch: Type.String({ description: 'The branch of the build that saved it' }),
    size: Type.Integer({ description: 'Bytes of the compressed archive' }),
    createdAt: Time,
    lastUsedAt: Time,
  },
  { title: 'Cache' },
);
export type Cache = Static<typeof CacheSchema>;

export const CacheDeletedSchema = Type.Object(
  { deleted: Type.Integer(), bytes: Type.Integer() },
  { title: 'CacheDeleted' },
);
export type CacheDeleted = Static<typeof CacheDeletedSchema>;

const cachesPath = (slug: string) => `${projectPath(slug)}/caches`;

export const cacheEndpoints = {
  list: (slug: string): Endpoint<Cache[]> => ({ method: 'GET', path: cachesPath(slug) }),
  remove: (slug: string, id: number): Endpoint<CacheDeleted> => ({
    method: 'DELETE',
    path: `${cachesPath(slug)}/${id}`,
  }),
  removeKey: (slug: string, key: string): Endpoint<CacheDeleted> => ({
    method: 'DELETE',
    path: `${cachesPath(slug)}?key=${encodeURIComponent(key)}`,
  }),
  removeAll: (slug: string): Endpoint<CacheDeleted> => ({
    method: 'DELETE',
    path: `${cachesPath(slug)}?all=true`,
  }),
} as const;
