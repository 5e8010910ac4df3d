import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBuilds, setBuildStatus } from './builds.js';
import { claimNextBuilds } from './queue.js';
import type { Database } from './schema.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import { ACTIVE_STATUSES } from './types.js';

/**
 * Races as a second server process would cause them. On PostgreSQL the two "servers" are
 * two Kysely instances with their own pools (separate sessions, exactly as two processes);
 * on SQLite one instance runs the same work interleaved, as one embedded server does.
 */
for (const dialect of DIALECTS) {
  describe(`${dialect}: concurrency`, () => {
    let t: TestDatabase;
    let servers: [Kysely<Database>, Kysely<Database>];
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
      servers = dialect === 'postgres' ? [t.db, t.openAnother()] : [t.db, t.db];
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('allocates 200 build numbers at once as 1..200, no gaps, no duplicates', async () => {
      const p = await makeProject(t.db);
      const created = await Promise.all(
        Array.from({ length: 200 }, (_, i) => makeBuild(servers[i % 2]!, p.id, { branch: `b${i % 7}` })),
      );
      const numbers = created.map((b) => b.number).sort((a, b) => a - b);
      expect(numbers).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const stored = await t.db
        .selectFrom('builds')
        .select('number')
        .where('project_id', '=', p.id)
        .execute();
      expect(new Set(stored.map((r) => r.number)).size).toBe(200);
    });

    it('two servers draining a queue of 50 never claim a build twice and keep every limit', async () => {
      await t.reset();
      const GLOBAL = 6;
      const limited = await makeProject(t.db, { maxRunning: 2 });
      const others = [await makeProject(t.db), await makeProject(t.db)];
      const projects = [limited, ...others];
      for (let i = 0; i < 50; i++) {
        const project = projects[i % 3]!;
        await makeBuild(t.db, project.id, { branch: `branch-${i % 4}` });
      }

      const claimedBy = new Map<number, string>();
      const duplicates: number[] = [];
      const startOrder = new Map<string, number[]>(); // project+branch → build ids in claim order
      const violations: string[] = [];
      let done = false;

      const audit = async () => {
        while (!done) {
          const active = await t.db
            .selectFrom('builds')
            .select(['id', 'project_id', 'branch'])
            .where('status', 'in', ACTIVE_STATUSES)
            .execute();
          if (active.length > GLOBAL) violations.push(`${active.length} active > global ${GLOBAL}`);
          const perBranch = new Map<string, number>();
          let ofLimited = 0;
          for (const b of active) {
            const key = `${b.project_id}/${b.branch}`;
            perBranch.set(key, (perBranch.get(key) ?? 0) + 1);
            if (b.project_id === limited.id) ofLimited += 1;
          }
          for (const [key, n] of perBranch) if (n > 1) violations.push(`${n} active builds on ${key}`);
          if (ofLimited > 2) violations.push(`${ofLimited} active builds of the limited project`);
          await sleep(1);
        }
      };

      const server = async (db: Kysely<Database>, owner: string) => {
        const running: Promise<void>[] = [];
        for (;;) {
          const claimed = await claimNextBuilds(db, owner, 60_000, { global: GLOBAL });
          for (const b of claimed) {
            if (claimedBy.has(b.id)) duplicates.push(b.id);
            claimedBy.set(b.id, owner);
            const key = `${b.projectId}/${b.branch}`;
            startOrder.set(key, [...(startOrder.get(key) ?? []), b.id]);
            running.push(
              (async () => {
                const started = await setBuildStatus(db, b.id, ['pending'], 'running', {
                  ifLeaseOwner: owner,
                });
                if (started === undefined) violations.push(`${owner} lost build ${b.id} before starting it`);
                await sleep(Math.random() * 5);
                const ended = await setBuildStatus(db, b.id, ['running'], 'success', { ifLeaseOwner: owner });
                if (ended === undefined) violations.push(`${owner} could not finish build ${b.id}`);
              })(),
            );
          }
          if (claimedBy.size === 50) break;
          await sleep(claimed.length === 0 ? 2 : 0);
        }
        await Promise.all(running);
      };

      const auditor = audit();
      await Promise.all([server(servers[0], 'server-a'), server(servers[1], 'server-b')]);
      done = true;
      await auditor;

      expect(duplicates).toEqual([]);
      expect(violations).toEqual([]);
      expect(claimedBy.size).toBe(50);
      for (const [key, order] of startOrder) {
        expect(order, `FIFO on ${key}`).toEqual([...order].sort((a, b) => a - b));
      }
      const { builds } = await listBuilds(t.db, { limit: 500 });
      expect(builds.filter((b) => b.status === 'success')).toHaveLength(50);
      expect(await t.db.selectFrom('locks').selectAll().execute()).toEqual([]);
      if (dialect === 'postgres') {
        // Both servers did real work: the race was real.
        expect(new Set(claimedBy.values()).size).toBe(2);
      }
    });
  });
}
