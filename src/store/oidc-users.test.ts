import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import {
  OIDC_LOGIN_MAX_AGE_MS,
  USER_SESSION_MAX_AGE_MS,
  createUserSession,
  deleteUserSession,
  saveOidcLogin,
  takeOidcLogin,
  verifyUserSession,
} from './oidc-users.js';

const ann = {
  issuer: 'https://id.example',
  subject: 'u-1',
  name: 'Ann <ann@x.example>',
  email: 'ann@x.example',
};

for (const dialect of DIALECTS) {
  describe(`${dialect}: people signed in by OIDC`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('keeps one row per issuer and subject, a session per sign-in, ids that never meet a token id', async () => {
      const first = await createUserSession(t.db, ann, 'member', 1000);
      const renamed = await createUserSession(t.db, { ...ann, name: 'Ann Lee' }, 'viewer', 2000);
      expect(await t.db.selectFrom('oidc_users').select('name').execute()).toEqual([{ name: 'Ann Lee' }]);
      expect(JSON.stringify(await t.db.selectFrom('user_sessions').selectAll().execute())).not.toContain(
        first.id.slice(5),
      );
      const caller = await verifyUserSession(t.db, first.id, 3000);
      expect(caller).toMatchObject({ name: 'Ann Lee', role: 'member', issuer: ann.issuer });
      expect(caller!.id).toBeLessThan(0);
      expect(await verifyUserSession(t.db, renamed.id, 3000)).toMatchObject({ role: 'viewer' });
      expect(await verifyUserSession(t.db, first.id, 1000 + USER_SESSION_MAX_AGE_MS)).toBeUndefined();
      expect(await verifyUserSession(t.db, `slws_${first.id.slice(5)}`, 3000)).toBeUndefined();
      expect(await deleteUserSession(t.db, renamed.id)).toBe(true);
      expect(await verifyUserSession(t.db, renamed.id, 3000)).toBeUndefined();
    });

    it('hands a sign-in under way out once, and not after ten minutes', async () => {
      const login = { state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/x' };
      await saveOidcLogin(t.db, 'key-1', login, 1000);
      expect(await takeOidcLogin(t.db, 'key-2', 1001)).toBeUndefined();
      expect(await takeOidcLogin(t.db, 'key-1', 1001)).toEqual(login);
      expect(await takeOidcLogin(t.db, 'key-1', 1002)).toBeUndefined();
      await saveOidcLogin(t.db, 'key-3', login, 1000);
      expect(await takeOidcLogin(t.db, 'key-3', 1000 + OIDC_LOGIN_MAX_AGE_MS)).toBeUndefined();
    });
  });
}
