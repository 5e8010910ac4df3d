import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKept } from './kept-query.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: kept queries`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('runs with each call its own values, in the places the first compilation found them', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id, { branch: 'a' });
      const b = await makeBuild(t.db, p.id, { branch: 'b' });
      // The values are given in another order than the query uses them.
      const find = (branch: string, id: number) =>
        runKept(t.db, 'test.find', [branch, id], ([br, buildId]) =>
          t.db
            .selectFrom('builds')
            .select(['id', 'branch'])
            .where('id', '=', buildId)
            .where('branch', '=', br),
        );
      expect((await find('a', a.id)).rows).toEqual([{ id: a.id, branch: 'a' }]);
      expect((await find('b', b.id)).rows).toEqual([{ id: b.id, branch: 'b' }]);
      expect((await find('a', b.id)).rows).toEqual([]);
    });

    it('counts the rows an update changed', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id);
      const setSha = (sha: string, id: number) =>
        runKept(t.db, 'test.setSha', [sha, id], ([s, buildId]) =>
          t.db.updateTable('builds').set({ commit_sha: s }).where('id', '=', buildId),
        );
      expect((await setSha('abc', a.id)).numAffectedRows).toBe(1n);
      expect((await setSha('def', a.id + 1000)).numAffectedRows).toBe(0n);
      const row = await t.db
        .selectFrom('builds')
        .select('commit_sha')
        .where('id', '=', a.id)
        .executeTakeFirst();
      expect(row?.commit_sha).toBe('abc');
    });

    it('refuses a query with a parameter that is not one of its values', async () => {
      await expect(
        runKept(t.db, 'test.constant', [1], ([id]) =>
          t.db.selectFrom('builds').select('id').where('id', '=', id).where('status', '=', 'queued'),
        ),
      ).rejects.toThrow(/test.constant: a parameter not from its values/);
    });
  });
}
