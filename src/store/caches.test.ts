import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteCaches, evictCaches, findCache, insertCache, listCaches, touchCache } from './caches.js';
import { deleteProject } from './projects.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from './testing/dialects.js';
import { makeProject } from './testing/fixtures.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: caches`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const save = (projectId: number, branch: string, key: string, now: number, size = 10) =>
      insertCache(t.db, {
        projectId,
        branch,
        key,
        blobKey: `caches/${projectId}/${key}-${branch}`,
        size,
        now,
      });

    it('finds the exact key on the branch, then the default branch, then the newest by prefix', async () => {
      const p = await makeProject(t.db, { slug: `acme/cache-find-${dialect}` });
      await save(p.id, 'main', 'npm-aaa', 1);
      await save(p.id, 'main', 'npm-bbb', 3);
      await save(p.id, 'feature', 'npm-ccc', 2);
      await save(p.id, 'main', 'npm_x', 4);
      const key = (hit: Awaited<ReturnType<typeof findCache>>) =>
        hit && [hit.cache.branch, hit.cache.key, hit.exact];
      expect(key(await findCache(t.db, p.id, ['feature', 'main'], 'npm-aaa', ['npm-']))).toEqual([
        'main',
        'npm-aaa',
        true,
      ]);
      // A prefix takes the build's branch first, however old, then the default branch's newest.
      expect(key(await findCache(t.db, p.id, ['feature', 'main'], 'npm-zzz', ['npm-']))).toEqual([
        'feature',
        'npm-ccc',
        false,
      ]);
      expect(key(await findCache(t.db, p.id, ['main'], 'npm-zzz', ['nope-', 'npm-']))).toEqual([
        'main',
        'npm-bbb',
        false,
      ]);
      // `_` is a character of the key, not a wildcard.
      expect(key(await findCache(t.db, p.id, ['main'], 'x', ['npm_']))).toEqual(['main', 'npm_x', false]);
      expect(await findCache(t.db, p.id, ['other'], 'npm-aaa', ['npm-'])).toBeUndefined();
      // The same key twice on a branch: the second is not recorded.
      expect(await save(p.id, 'main', 'npm-aaa', 9)).toBeUndefined();
    });

    it('evicts by age, then least recently used until the project fits', async () => {
      const p = await makeProject(t.db, { slug: `acme/cache-lru-${dialect}` });
      const a = (await save(p.id, 'main', 'a', 100, 40))!;
      await save(p.id, 'main', 'b', 200, 40);
      await save(p.id, 'main', 'c', 300, 40);
      await save(p.id, 'main', 'old', 10, 1);
      await touchCache(t.db, a.id, 400);
      const evicted = await evictCaches(t.db, p.id, { maxProjectBytes: 90, maxAgeMs: 1000 }, 1050);
      expect(evicted.map((r) => r.key).sort()).toEqual(['b', 'old']);
      expect((await listCaches(t.db, p.id)).map((r) => r.key)).toEqual(['a', 'c']);
    });

    it('deletes one by id or key, all of a project, and goes with its project', async () => {
      const p = await makeProject(t.db, { slug: `acme/cache-del-${dialect}` });
      const one = (await save(p.id, 'main', 'one', 1))!;
      await save(p.id, 'main', 'two', 2);
      await save(p.id, 'dev', 'two', 3);
      await save(p.id, 'main', 'three', 4);
      expect((await deleteCaches(t.db, p.id, { id: one.id })).map((r) => r.key)).toEqual(['one']);
      await expect(deleteCaches(t.db, p.id, { id: one.id })).rejects.toMatchObject({ code: 'not_found' });
      expect(await deleteCaches(t.db, p.id, { key: 'two' })).toHaveLength(2);
      expect((await listCaches(t.db, p.id)).map((r) => r.key)).toEqual(['three']);
      await deleteProject(t.db, p.id);
      const q = await makeProject(t.db, { slug: `acme/cache-del2-${dialect}` });
      expect(await listCaches(t.db, p.id)).toEqual([]);
      await save(q.id, 'main', 'x', 1);
      expect(await deleteCaches(t.db, q.id, 'all')).toHaveLength(1);
    });
  });
}
