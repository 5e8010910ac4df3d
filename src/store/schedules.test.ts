import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteProject } from './projects.js';
import {
  claimScheduleTick,
  createSchedule,
  dueSchedules,
  getSchedule,
  listSchedules,
  setScheduleBuild,
  updateSchedule,
} from './schedules.js';
import type { Database } from './schema.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import { writeTransaction } from './transaction.js';

const T0 = Date.parse('2026-05-01T10:00:00Z');

/**
 * The claim of a schedule's tick, on both dialects. On PostgreSQL the two "servers" are two
 * Kysely instances with their own pools (two sessions, as two processes); on SQLite one
 * instance, as one embedded server.
 */
for (const dialect of DIALECTS) {
  describe(`${dialect}: schedules`, () => {
    let t: TestDatabase;
    let servers: [Kysely<Database>, Kysely<Database>];
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
      servers = dialect === 'postgres' ? [t.db, t.openAnother()] : [t.db, t.db];
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const newSchedule = async (projectId: number, nextRunAt: number | null, enabled = true) =>
      createSchedule(
        t.db,
        {
          projectId,
          name: 'nightly',
          cron: '0 3 * * *',
          timezone: 'UTC',
          branch: 'main',
          enabled,
          nextRunAt,
        },
        T0,
      );

    it('lists the due ones only: enabled, with a tick at or before now', async () => {
      const p = await makeProject(t.db);
      const due = await newSchedule(p.id, T0 - 1);
      const atNow = await newSchedule(p.id, T0);
      await newSchedule(p.id, T0 + 1);
      await newSchedule(p.id, T0 - 1, false);
      const ids = (await dueSchedules(t.db, T0)).filter((s) => s.projectId === p.id).map((s) => s.id);
      expect(ids).toEqual([due.id, atNow.id]);
    });

    it('two servers claiming the same tick at once: exactly one wins, every time', async () => {
      const p = await makeProject(t.db);
      for (let round = 0; round < 10; round++) {
        const s = await newSchedule(p.id, T0 + round);
        const wins = await Promise.all(
          servers.map((db) =>
            writeTransaction(db, (trx) => claimScheduleTick(trx, s.id, T0 + round, T0 + 60_000, T0)),
          ),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect(await getSchedule(t.db, s.id)).toMatchObject({
          nextRunAt: T0 + 60_000,
          lastRunAt: T0 + round,
        });
      }
    });

    it('a claim rolled back with its transaction gives the tick back', async () => {
      const p = await makeProject(t.db);
      const s = await newSchedule(p.id, T0);
      await expect(
        writeTransaction(t.db, async (trx) => {
          expect(await claimScheduleTick(trx, s.id, T0, T0 + 60_000, T0)).toBe(true);
          throw new Error('build creation failed');
        }),
      ).rejects.toThrow('build creation failed');
      expect((await getSchedule(t.db, s.id))?.nextRunAt).toBe(T0);
      expect(await writeTransaction(t.db, (trx) => claimScheduleTick(trx, s.id, T0, null, T0))).toBe(true);
    });

    it('a disabled schedule cannot be claimed; the last build is listed with its number', async () => {
      const p = await makeProject(t.db);
      const s = await newSchedule(p.id, T0);
      await updateSchedule(t.db, s.id, { enabled: false }, T0);
      expect(await claimScheduleTick(t.db, s.id, T0, T0 + 1, T0)).toBe(false);
      const build = await makeBuild(t.db, p.id, { event: 'cron', trigger: 'schedule' });
      await setScheduleBuild(t.db, s.id, build.id);
      expect((await listSchedules(t.db, p.id))[0]).toMatchObject({
        enabled: false,
        lastBuild: { id: build.id, number: build.number, status: 'queued' },
      });
    });

    it('goes with its project', async () => {
      const p = await makeProject(t.db);
      const s = await newSchedule(p.id, T0);
      await deleteProject(t.db, p.id);
      expect(await getSchedule(t.db, s.id)).toBeUndefined();
    });
  });
}
