import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBuilds, listBuildsQuery } from './builds.js';
import type { BuildFilter } from './builds.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeProject } from './testing/fixtures.js';
import type { Project } from './types.js';

const BUILDS = 100_000;

/**
 * 100k builds: every list shape the API offers must page through an index in id order. The
 * plan is checked (no sort of the table, no full scan) rather than only the clock, so the
 * test fails on a missing index even on a fast machine.
 */
for (const dialect of DIALECTS) {
  describe(`${dialect}: listing 100k builds`, () => {
    let t: TestDatabase;
    let big: Project;
    let small: Project;

    beforeAll(async () => {
      t = await openTestDatabase(dialect);
      big = await makeProject(t.db);
      small = await makeProject(t.db);
      // One build in ten belongs to `small`; statuses and branches vary so filters select.
      const rows = sql`
        select cast(case when g % 10 = 0 then ${small.id} else ${big.id} end as bigint),
               g,
               case when g % 50 = 7 then 'failure' when g % 1000 = 1 then 'queued' else 'success' end,
               'branch-' || (g % 20),
               'push', 'webhook', g, g
      `;
      const columns = sql`(project_id, number, status, branch, event, trigger, created_at, queued_at)`;
      if (dialect === 'postgres') {
        await sql`insert into builds ${columns} ${rows} from generate_series(1, ${BUILDS}::int) as s(g)`.execute(
          t.db,
        );
        await sql`analyze builds`.execute(t.db);
      } else {
        await sql`with recursive s(g) as (select 1 union all select g + 1 from s where g < ${BUILDS})
                  insert into builds ${columns} ${rows} from s`.execute(t.db);
        await sql`analyze`.execute(t.db);
      }
    }, 120_000);
    afterAll(async () => {
      await t?.destroy();
    });

    const shapes: [string, () => BuildFilter][] = [
      ['all', () => ({})],
      ['all, deep page', () => ({ before: 50_000 })],
      ['project', () => ({ projectId: big.id })],
      ['project, deep page', () => ({ projectId: big.id, before: 20_000 })],
      ['small project', () => ({ projectId: small.id })],
      ['status', () => ({ status: ['failure'] })],
      ['project + status', () => ({ projectId: big.id, status: ['failure'] })],
      ['project + branch', () => ({ projectId: big.id, branch: 'branch-7' })],
      ['project + branch, deep page', () => ({ projectId: big.id, branch: 'branch-7', before: 30_000 })],
    ];

    it.each(shapes)('%s: pages through an index without sorting', async (_name, filter) => {
      const compiled = listBuildsQuery(t.db, filter(), 51).compile();
      const explain = dialect === 'postgres' ? 'explain ' : 'explain query plan ';
      const { rows } = await t.db.executeQuery<Record<string, string>>(
        CompiledQuery.raw(explain + compiled.sql, [...compiled.parameters]),
      );
      const plan = rows.map((r) => r['QUERY PLAN'] ?? r.detail).join('\n');
      // No sort: pages come from an index (or the primary key) in id order and stop at LIMIT.
      expect(plan).not.toMatch(/TEMP B-TREE FOR ORDER BY|\bSort\b/);

      // The plan is the assertion (wall times are noise on shared machines); bench/ measures speed.
      const page = await listBuilds(t.db, { ...filter(), limit: 50 });
      expect(page.builds.length).toBeGreaterThan(0);
    });

    it('walks every page of a project exactly once', async () => {
      let before: number | undefined;
      let seen = 0;
      let last = Infinity;
      for (;;) {
        const page = await listBuilds(t.db, { projectId: small.id, limit: 500, before });
        for (const b of page.builds) {
          expect(b.id).toBeLessThan(last);
          last = b.id;
        }
        seen += page.builds.length;
        if (page.nextBefore === null) break;
        before = page.nextBefore;
      }
      expect(seen).toBe(BUILDS / 10);
    });
  });
}
