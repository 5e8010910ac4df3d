import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SLUG_PART_LENGTH, createProject, getProjectBySlug } from './projects.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';

// Issue 10: names longer than the router's path-parameter limit were stored and then
// unreachable. The store enforces the one limit itself, whoever calls it.
for (const dialect of DIALECTS) {
  describe(`${dialect}: project name length`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('accepts owner and name of up to 64 characters each, and refuses longer ones naming the field', async () => {
      const longest = `${'o'.repeat(MAX_SLUG_PART_LENGTH)}/${'n'.repeat(MAX_SLUG_PART_LENGTH)}`;
      expect((await createProject(t.db, { slug: longest, repoUrl: 'x' })).slug).toBe(longest);
      expect(longest).toHaveLength(129);
      for (const slug of [
        `acme/${'n'.repeat(MAX_SLUG_PART_LENGTH + 1)}`,
        `${'o'.repeat(MAX_SLUG_PART_LENGTH + 1)}/web`,
        `acme/${'n'.repeat(195)}`,
      ]) {
        await expect(createProject(t.db, { slug, repoUrl: 'x' })).rejects.toMatchObject({
          code: 'invalid',
          details: { field: 'slug' },
          message: `project name is too long: owner and name may have at most ${MAX_SLUG_PART_LENGTH} characters each`,
        });
        expect(await getProjectBySlug(t.db, slug)).toBeUndefined();
      }
    });
  });
}
