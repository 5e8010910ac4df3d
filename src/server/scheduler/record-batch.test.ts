import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBuildRecords,
  getBuildRecords,
  updateStage,
  updateStep,
  type Database,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { RecordBatch } from './record-batch.js';

describe.each(DIALECTS)('a build run’s record writes (%s)', (dialect) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const tree = async () => {
    const p = await makeProject(t.db);
    const b = await makeBuild(t.db, p.id);
    const [stage] = await createBuildRecords(t.db, b.id, [{ name: 'test', steps: ['unit'] }]);
    return { buildId: b.id, stageId: stage!.id, stepId: stage!.steps[0]!.id };
  };

  it('writes of one moment go into one transaction, in order, and are seen all at once', async () => {
    const { buildId, stageId, stepId } = await tree();
    const batch = new RecordBatch(t.db);
    const transactions: Kysely<Database>[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    // A step and its stage ending together, as the orchestrator reports them.
    const step = batch.add(async (trx) => {
      transactions.push(trx);
      return updateStep(trx, stepId, { status: 'success', exitCode: 0 });
    });
    const stage = batch.add(async (trx) => {
      transactions.push(trx);
      const applied = await updateStage(trx, stageId, { status: 'success' });
      entered();
      await held;
      return applied;
    });
    await inside;
    // Another connection (a reader: the API of this or another replica) sees neither yet.
    const reader = t.openAnother();
    const seen = async () => {
      const [s] = await getBuildRecords(reader, buildId);
      return [s!.status, s!.steps[0]!.status];
    };
    expect(await seen()).toEqual(['queued', 'queued']);
    release();
    expect(await Promise.all([step, stage])).toEqual([true, true]);
    expect(transactions).toHaveLength(2);
    expect(transactions[0]).toBe(transactions[1]);
    expect(await seen()).toEqual(['success', 'success']);
  });

  it('a write added while a transaction runs goes into the next one; a failed one fails its batch only', async () => {
    const { buildId, stageId, stepId } = await tree();
    const batch = new RecordBatch(t.db);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = batch.add(async (trx) => {
      await updateStage(trx, stageId, { status: 'running' });
      entered();
      await held;
      throw new Error('the disk is full');
    });
    await inside;
    const second = batch.add((trx) => updateStep(trx, stepId, { status: 'running' }));
    release();
    await expect(first).rejects.toThrow('the disk is full');
    await expect(second).resolves.toBe(true);
    await batch.settled();
    const [s] = await getBuildRecords(t.db, buildId);
    // The first transaction rolled back; the second committed on its own.
    expect([s!.status, s!.steps[0]!.status]).toEqual(['queued', 'running']);
  });
});
