import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import {
  SESSION_MAX_AGE_MS,
  SESSION_PREFIX,
  createSession,
  deleteSession,
  verifySession,
} from './sessions.js';
import { createToken, revokeToken } from './tokens.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: browser sessions`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('stores only a hash of the session id and maps it to its token', async () => {
      const { token, info } = await createToken(t.db, { name: 'web', role: 'member' });
      const session = await createSession(t.db, info, 1000);
      expect(session.id.startsWith(SESSION_PREFIX)).toBe(true);
      const rows = await t.db.selectFrom('sessions').selectAll().execute();
      expect(JSON.stringify(rows)).not.toContain(session.id.slice(SESSION_PREFIX.length));
      expect(await verifySession(t.db, session.id, 2000)).toMatchObject({ id: info.id, role: 'member' });
      // Neither the token nor a tampered id is a session id.
      expect(await verifySession(t.db, token, 2000)).toBeUndefined();
      expect(await verifySession(t.db, `${session.id}x`, 2000)).toBeUndefined();
    });

    it('ends with sign-out, with the revocation of its token, and after the maximum age', async () => {
      const { info } = await createToken(t.db, { name: 'web2', role: 'viewer' });
      const out = await createSession(t.db, info, 1000);
      expect(await deleteSession(t.db, out.id)).toBe(true);
      expect(await verifySession(t.db, out.id, 2000)).toBeUndefined();
      expect(await deleteSession(t.db, out.id)).toBe(false);

      const old = await createSession(t.db, info, 1000);
      expect(await verifySession(t.db, old.id, 1000 + SESSION_MAX_AGE_MS - 1)).toBeDefined();
      expect(await verifySession(t.db, old.id, 1000 + SESSION_MAX_AGE_MS)).toBeUndefined();
      // A later sign-in sweeps the expired row away.
      await createSession(t.db, info, 1000 + SESSION_MAX_AGE_MS);
      const hashes = await t.db
        .selectFrom('sessions')
        .select('created_at')
        .where('token_id', '=', info.id)
        .execute();
      expect(hashes.map((h) => h.created_at)).toEqual([1000 + SESSION_MAX_AGE_MS]);

      const live = await createSession(t.db, info, 5000);
      expect(await verifySession(t.db, live.id, 6000)).toBeDefined();
      await revokeToken(t.db, info.id);
      expect(await verifySession(t.db, live.id, 6000)).toBeUndefined();
    });
  });
}
