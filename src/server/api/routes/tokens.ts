import { createToken, listTokens, revokeToken } from '../../../store/index.js';
import { callerOf } from '../../auth/index.js';
import { ADMIN, VIEWER } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { toTokenInfo } from '../convert.js';
import { HttpError, notFound } from '../errors.js';
import { IdParams, TokenCreateSchema, TokenCreatedSchema, TokenInfoSchema } from '../schemas.js';
import { Type } from '@sinclair/typebox';

const tags = ['tokens'];

/** API tokens: admins manage them; anyone may ask who their token is. */
export function tokenRoutes(api: App, { db, live: liveLogs }: RouteContext): void {
  api.get(
    '/tokens',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Tokens in use (never their secrets)',
        response: { 200: Type.Array(TokenInfoSchema) },
      },
    },
    async () => (await listTokens(db)).filter((t) => !t.revoked).map(toTokenInfo),
  );

  api.post(
    '/tokens',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Create a token; its secret is in this answer only',
        body: TokenCreateSchema,
        response: { 201: TokenCreatedSchema },
      },
    },
    async (request, reply) => {
      const created = await createToken(db, request.body);
      return reply.code(201).send({ ...toTokenInfo(created.info), token: created.token });
    },
  );

  api.delete(
    '/tokens/:id',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Revoke a token (409 for the last admin token)',
        params: IdParams,
        response: { 204: { type: 'null', description: 'Revoked' } },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      const live = (await listTokens(db)).filter((t) => !t.revoked);
      const token = live.find((t) => t.id === id);
      if (token === undefined) throw notFound(`token ${id}`);
      // Without an admin token nobody could create tokens again short of editing the database.
      if (token.role === 'admin' && live.filter((t) => t.role === 'admin').length === 1) {
        throw new HttpError(
          409,
          'conflict',
          'the last admin token cannot be revoked; create another admin token first',
        );
      }
      if (!(await revokeToken(db, id))) throw notFound(`token ${id}`);
      // Its live log streams (by token or by a session it opened) end now, not with their builds.
      liveLogs.streams.closeToken(id);
      return reply.code(204).send();
    },
  );

  api.get(
    '/whoami',
    {
      config: VIEWER,
      schema: { tags, summary: 'The token of this request', response: { 200: TokenInfoSchema } },
    },
    (request) => toTokenInfo(callerOf(request)),
  );
}
