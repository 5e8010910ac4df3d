import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSchedule,
  getSchedule,
  listBuilds,
  updateSchedule,
  type Build,
  type Database,
  type Project,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { makeProject } from '../../store/testing/fixtures.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { ScheduleRunner } from './runner.js';

const MINUTE = 60_000;
/** A minute boundary: `* * * * *` ticks at T0, T0 + 1 min, … */
const T0 = Date.parse('2026-05-01T10:00:00Z');

/**
 * The runner against a real database of each dialect, building through the manual trigger's
 * path. A replica is a runner with its own database instance (on PostgreSQL its own pool: a
 * second process as far as the database can tell) and the clock the test sets.
 */
for (const dialect of DIALECTS) {
  describe(`${dialect}: schedule runner`, () => {
    let t: TestDatabase;
    let clock = T0;
    const replica = (db: Kysely<Database>, queued: Build[] = []) =>
      new ScheduleRunner({
        db,
        trigger: (trx, project, input) => new DatabaseBuildControl(trx).trigger(project, input),
        onQueued: (build) => queued.push(build),
        now: () => clock,
      });
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const everyMinute = (project: Project, nextRunAt: number, name: string | null = 'nightly') =>
      createSchedule(
        t.db,
        {
          projectId: project.id,
          name,
          cron: '* * * * *',
          timezone: 'UTC',
          branch: 'release/1',
          enabled: true,
          nextRunAt,
        },
        T0 - 10 * MINUTE,
      );
    const buildsOf = async (project: Project) => (await listBuilds(t.db, { projectId: project.id })).builds;

    it('two replicas passing at every tick start exactly one build per tick, event cron', async () => {
      const p = await makeProject(t.db);
      const s = await everyMinute(p, T0);
      const queued: Build[] = [];
      const a = replica(t.db, queued);
      const b = replica(dialect === 'postgres' ? t.openAnother() : t.db, queued);
      for (let tick = 0; tick < 3; tick++) {
        clock = T0 + tick * MINUTE + 5;
        await Promise.all([a.runDue(), b.runDue(), a.runDue()]);
      }
      const builds = await buildsOf(p);
      expect(builds).toHaveLength(3);
      expect(queued.map((x) => x.id).sort()).toEqual(builds.map((x) => x.id).sort());
      for (const build of builds) {
        expect(build).toMatchObject({
          event: 'cron',
          trigger: 'schedule',
          triggeredBy: `schedule #${s.id} "nightly"`,
          branch: 'release/1',
        });
      }
      expect(await getSchedule(t.db, s.id)).toMatchObject({
        nextRunAt: T0 + 3 * MINUTE,
        lastRunAt: T0 + 2 * MINUTE,
        lastBuild: { number: 3 },
      });
    });

    it('ticks missed while no server ran start one build at start-up, then count from now', async () => {
      const p = await makeProject(t.db);
      // Due since ten minutes: the server was down for ten ticks.
      const s = await everyMinute(p, T0 - 10 * MINUTE, null);
      clock = T0 + 30_000;
      const first = await replica(t.db).runDue();
      expect(first.started.filter((x) => x.scheduleId === s.id)).toHaveLength(1);
      expect((await getSchedule(t.db, s.id))?.nextRunAt).toBe(T0 + MINUTE);
      // A restart within the same minute (another server start) starts nothing more.
      expect((await replica(t.db).runDue()).started.filter((x) => x.scheduleId === s.id)).toEqual([]);
      const builds = await buildsOf(p);
      expect(builds).toHaveLength(1);
      expect(builds[0]?.triggeredBy).toBe(`schedule #${s.id}`);
    });

    it('a disabled schedule starts nothing', async () => {
      const p = await makeProject(t.db);
      const s = await everyMinute(p, T0);
      await updateSchedule(t.db, s.id, { enabled: false });
      clock = T0 + 5 * MINUTE;
      await replica(t.db).runDue();
      expect(await buildsOf(p)).toEqual([]);
    });
  });
}
