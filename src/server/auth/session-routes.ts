import { Type } from '@sinclair/typebox';
import {
  USER_SESSION_PREFIX,
  createSession,
  deleteSession,
  deleteUserSession,
  verifyToken,
} from '../../store/index.js';
import { PUBLIC } from '../api/context.js';
import type { App, RouteContext } from '../api/context.js';
import { toTokenInfo } from '../api/convert.js';
import { TokenInfoSchema } from '../api/schemas.js';
import { requireSameOrigin } from './authenticate.js';
import { cameOverHttps, clearedSessionCookie, sessionCookie, sessionIdOf } from './cookie.js';
import { AuthError } from './errors.js';

const tags = ['tokens'];

const SignInSchema = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 1000, description: 'An API token (slw_…)' }) },
  { additionalProperties: false, title: 'SignIn' },
);

/**
 * Sign-in and sign-out of the web UI. A browser trades a token for a session cookie once, so
 * the token never sits in page-readable storage and every tab of the browser is signed in.
 *
 * The cookie holds a random session id, not the token: the token would be a bearer secret
 * the browser re-sends forever, valid for the CLI too, and unrecoverable by sign-out. The
 * database keeps only the id's SHA-256 and the token it stands for, so sign-out deletes the
 * row (a copied cookie dies with it), revoking the token ends its sessions (they are checked
 * against the token on every request), and every replica and restart knows the session.
 */
export function sessionRoutes(api: App, { db, live }: RouteContext): void {
  api.post(
    '/session',
    {
      config: PUBLIC,
      schema: {
        tags,
        summary: 'Sign in a browser: trade a token for a session cookie (needs X-Slipway-CSRF)',
        body: SignInSchema,
        response: { 200: TokenInfoSchema },
      },
    },
    async (request, reply) => {
      // Login CSRF too: another site must not sign a visitor in under its own token.
      requireSameOrigin(request);
      const token = await verifyToken(db, request.body.token.trim());
      if (token === undefined) throw new AuthError('unauthorized', 'the token is unknown or revoked');
      const previous = sessionIdOf(request);
      if (previous !== undefined) {
        if (previous.startsWith(USER_SESSION_PREFIX)) await deleteUserSession(db, previous);
        else await deleteSession(db, previous);
        live.streams.closeSession(previous);
      }
      const session = await createSession(db, token);
      return reply
        .header('set-cookie', sessionCookie(session.id, cameOverHttps(request)))
        .header('cache-control', 'no-store')
        .send(toTokenInfo(session.info));
    },
  );

  api.delete(
    '/session',
    {
      config: PUBLIC,
      schema: {
        tags,
        summary: 'Sign out a browser: end its session and drop the cookie (needs X-Slipway-CSRF)',
        response: { 204: { type: 'null', description: 'Signed out' } },
      },
    },
    async (request, reply) => {
      const id = sessionIdOf(request);
      if (id !== undefined) {
        // Otherwise another site could sign a visitor out.
        requireSameOrigin(request);
        if (id.startsWith(USER_SESSION_PREFIX)) await deleteUserSession(db, id);
        else await deleteSession(db, id);
        // Its live log streams end with it.
        live.streams.closeSession(id);
      }
      return reply
        .code(204)
        .header('set-cookie', clearedSessionCookie(cameOverHttps(request)))
        .send();
    },
  );
}
