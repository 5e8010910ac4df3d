import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBuild } from './builds.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import { relaxedTransaction, writeTransaction } from './transaction.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: write transactions`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    /** The durability setting the connection has now, as the database words it. */
    const durability = async (db = t.db) =>
      dialect === 'sqlite'
        ? String((await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]!.synchronous)
        : (await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(db)).rows[0]!
            .synchronous_commit;

    it('a relaxed transaction commits without a sync, and leaves the connection as it was', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const before = await durability();
      if (dialect === 'sqlite') expect(before).toBe('2'); // FULL: what the API accepts is synced
      const inside = await relaxedTransaction(t.db, async (trx) => {
        await trx.updateTable('builds').set({ commit_sha: 'abc' }).where('id', '=', b.id).execute();
        return durability(trx);
      });
      expect(inside).toBe(dialect === 'sqlite' ? '1' : 'off');
      expect(await durability()).toBe(before);
      expect((await getBuild(t.db, b.id))?.commitSha).toBe('abc');
    });

    it('a failed relaxed transaction rolls back and still sets the connection back', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const before = await durability();
      await expect(
        relaxedTransaction(t.db, async (trx) => {
          await trx.updateTable('builds').set({ commit_sha: 'def' }).where('id', '=', b.id).execute();
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await durability()).toBe(before);
      expect((await getBuild(t.db, b.id))?.commitSha).toBeNull();
    });

    it('a relaxed write inside a full transaction joins it', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      await writeTransaction(t.db, async (trx) => {
        await relaxedTransaction(trx, async (inner) => {
          expect(inner).toBe(trx);
          await inner.updateTable('builds').set({ commit_sha: 'ghi' }).where('id', '=', b.id).execute();
        });
      });
      expect((await getBuild(t.db, b.id))?.commitSha).toBe('ghi');
    });
  });
}
