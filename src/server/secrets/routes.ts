import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';
import { ADMIN, VIEWER, projectOr404 } from '../api/context.js';
import type { App } from '../api/context.js';
import { notFound } from '../api/errors.js';
import { ProjectParams, SecretInfoSchema, SecretNameSchema, SecretSetSchema } from '../api/schemas.js';
import type { SecretInfo, SecretSet } from '../../contract/dto.js';
import type { SecretCipher } from './cipher.js';
import { deleteSecret, listSecrets, setSecret } from './store.js';
import type { SecretInfo as StoredSecret, SecretScope } from './store.js';

export interface SecretRouteDeps {
  db: Kysely<Database>;
  cipher: SecretCipher;
}

const tags = ['secrets'];

/** The API's shapes of a secret (src/contract/dto.ts). */
export { SecretInfoSchema };
export type SecretInfoDto = SecretInfo;
const SecretName = SecretNameSchema;

const ProjectSecretParams = Type.Object({ owner: Type.String(), name: Type.String(), secret: SecretName });
const GlobalSecretParams = Type.Object({ secret: SecretName });

/**
 * Secrets API, registered inside the `/api/v1` prefix: per project under
 * `/projects/{owner}/{name}/secrets`, global ones under `/secrets`. Admins set and delete;
 * every role may list names. No route returns a value, not even to admins: a secret is
 * written once and then only used by builds.
 */
export function registerSecretRoutes(api: App, deps: SecretRouteDeps): void {
  const { db, cipher } = deps;
  const project = async (owner: string, name: string): Promise<SecretScope> =>
    (await projectOr404(db, owner, name)).id;

  api.get(
    '/projects/:owner/:name/secrets',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's secrets: names, times and allowForks, never values",
        params: ProjectParams,
        response: { 200: Type.Array(SecretInfoSchema) },
      },
    },
    async (request) =>
      (await listSecrets(db, await project(request.params.owner, request.params.name))).map(toDto),
  );

  api.put(
    '/projects/:owner/:name/secrets/:secret',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Create or replace a project secret (201 created, 200 replaced)',
        params: ProjectSecretParams,
        body: SecretSetSchema,
        response: { 200: SecretInfoSchema, 201: SecretInfoSchema },
      },
    },
    async (request, reply) => {
      const scope = await project(request.params.owner, request.params.name);
      const result = await set(scope, request.params.secret, request.body);
      return reply.code(result.created ? 201 : 200).send(toDto(result.info));
    },
  );

  api.delete(
    '/projects/:owner/:name/secrets/:secret',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Delete a project secret',
        params: ProjectSecretParams,
        response: { 204: { type: 'null', description: 'Deleted' } },
      },
    },
    async (request, reply) => {
      const { owner, name, secret } = request.params;
      if (!(await deleteSecret(db, await project(owner, name), secret)))
        throw notFound(`secret ${secret} of ${owner}/${name}`);
      return reply.code(204).send();
    },
  );

  api.get(
    '/secrets',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'Global secrets (every project may use them): names and times, never values',
        response: { 200: Type.Array(SecretInfoSchema) },
      },
    },
    async () => (await listSecrets(db, null)).map(toDto),
  );

  api.put(
    '/secrets/:secret',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Create or replace a global secret; a project secret of the same name wins over it',
        params: GlobalSecretParams,
        body: SecretSetSchema,
        response: { 200: SecretInfoSchema, 201: SecretInfoSchema },
      },
    },
    async (request, reply) => {
      const result = await set(null, request.params.secret, request.body);
      return reply.code(result.created ? 201 : 200).send(toDto(result.info));
    },
  );

  api.delete(
    '/secrets/:secret',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Delete a global secret',
        params: GlobalSecretParams,
        response: { 204: { type: 'null', description: 'Deleted' } },
      },
    },
    async (request, reply) => {
      if (!(await deleteSecret(db, null, request.params.secret)))
        throw notFound(`global secret ${request.params.secret}`);
      return reply.code(204).send();
    },
  );

  async function set(scope: SecretScope, name: string, body: SecretSet) {
    // A name or value that cannot be stored is a SecretError('invalid'): a 400 (see api/errors.ts).
    return setSecret(db, cipher, scope, {
      name,
      value: body.value,
      allowForks: body.allowForks ?? false,
    });
  }
}

function toDto(info: StoredSecret): SecretInfo {
  return {
    name: info.name,
    allowForks: info.allowForks,
    createdAt: new Date(info.createdAt).toISOString(),
    updatedAt: new Date(info.updatedAt).toISOString(),
  };
}
