import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBuild } from './builds.js';
import { claimNextBuilds } from './queue.js';
import {
  createProject,
  deleteProject,
  getProject,
  getProjectBySlug,
  listProjects,
  updateProject,
} from './projects.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild } from './testing/fixtures.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: projects`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('creates a project with defaults and reads it by id and slug', async () => {
      const p = await createProject(
        t.db,
        { slug: 'acme/web', repoUrl: 'https://git.example/acme/web.git' },
        1000,
      );
      expect(p).toEqual({
        id: expect.any(Number) as number,
        slug: 'acme/web',
        repoUrl: 'https://git.example/acme/web.git',
        branchFilter: '.*',
        defaultExecutor: null,
        defaultImage: null,
        concurrencyPolicy: 'queue',
        maxRunning: null,
        maxLogBytes: null,
        pipelinePath: '.slipway.yml',
        lastNumber: 0,
        createdAt: 1000,
        updatedAt: 1000,
      });
      expect(await getProject(t.db, p.id)).toEqual(p);
      expect(await getProjectBySlug(t.db, 'acme/web')).toEqual(p);
      expect(await getProject(t.db, 999_999)).toBeUndefined();
      expect(await getProjectBySlug(t.db, 'acme/none')).toBeUndefined();
    });

    it('refuses a taken slug with conflict', async () => {
      await createProject(t.db, { slug: 'acme/dup', repoUrl: 'x' });
      await expect(createProject(t.db, { slug: 'acme/dup', repoUrl: 'y' })).rejects.toMatchObject({
        code: 'conflict',
        details: { slug: 'acme/dup' },
      });
    });

    it.each([
      [{ slug: 'no-slash' }, 'slug'],
      [{ slug: 'a/b/c' }, 'slug'],
      [{ repoUrl: ' ' }, 'repoUrl'],
      [{ branchFilter: '(' }, 'branchFilter'],
      [{ maxRunning: 0 }, 'maxRunning'],
      [{ maxRunning: 1.5 }, 'maxRunning'],
      [{ maxLogBytes: 100 }, 'maxLogBytes'],
      [{ concurrencyPolicy: 'race' as 'queue' }, 'concurrencyPolicy'],
      [{ pipelinePath: '' }, 'pipelinePath'],
    ])('refuses invalid %o', async (bad, field) => {
      await expect(
        createProject(t.db, { slug: 'acme/ok-invalid', repoUrl: 'x', ...bad }),
      ).rejects.toMatchObject({
        code: 'invalid',
        details: { field },
      });
      expect(await getProjectBySlug(t.db, 'acme/ok-invalid')).toBeUndefined();
    });

    it('lists by slug with a keyset cursor', async () => {
      for (const name of ['c', 'a', 'b']) await createProject(t.db, { slug: `list/${name}`, repoUrl: 'x' });
      const all = (await listProjects(t.db, { limit: 1000 }))
        .map((p) => p.slug)
        .filter((s) => s.startsWith('list/'));
      expect(all).toEqual(['list/a', 'list/b', 'list/c']);
      const page = await listProjects(t.db, { after: 'list/a', limit: 2 });
      expect(page.map((p) => p.slug)).toEqual(['list/b', 'list/c']);
    });

    it('updates settings, keeps what is not given, and reports a missing project', async () => {
      const p = await createProject(
        t.db,
        { slug: 'acme/upd', repoUrl: 'x', maxRunning: 3, defaultImage: 'alpine' },
        1000,
      );
      const u = await updateProject(t.db, p.id, { concurrencyPolicy: 'supersede', maxRunning: null }, 2000);
      expect(u).toMatchObject({
        concurrencyPolicy: 'supersede',
        maxRunning: null,
        defaultImage: 'alpine',
        createdAt: 1000,
        updatedAt: 2000,
      });
      // Set and read back on both dialects (a bigint column: PostgreSQL answers a string).
      const limited = await updateProject(t.db, p.id, { maxLogBytes: 5 * 1024 ** 3 }, 3000);
      expect(limited.maxLogBytes).toBe(5 * 1024 ** 3);
      expect((await getProject(t.db, p.id))?.maxLogBytes).toBe(5 * 1024 ** 3);
      await expect(updateProject(t.db, 999_999, { repoUrl: 'y' })).rejects.toMatchObject({
        code: 'not_found',
      });
      await expect(updateProject(t.db, p.id, { branchFilter: '[' })).rejects.toMatchObject({
        code: 'invalid',
      });
    });

    it('deletes a project with its builds, but not while one is active', async () => {
      await t.reset();
      const p = await createProject(t.db, { slug: 'acme/del', repoUrl: 'x' });
      const b = await makeBuild(t.db, p.id);
      await claimNextBuilds(t.db, 'server-a', 60_000, { global: 10 });
      await expect(deleteProject(t.db, p.id)).rejects.toMatchObject({ code: 'conflict' });

      const q = await createProject(t.db, { slug: 'acme/del2', repoUrl: 'x' });
      const qb = await makeBuild(t.db, q.id);
      await deleteProject(t.db, q.id);
      expect(await getProject(t.db, q.id)).toBeUndefined();
      expect(await getBuild(t.db, qb.id)).toBeUndefined();
      expect(await getBuild(t.db, b.id)).toBeDefined();
      await expect(deleteProject(t.db, q.id)).rejects.toMatchObject({ code: 'not_found' });
    });
  });
}
