import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryExecutor } from '../../executors/memory/memory-executor.js';
import {
  createProject,
  getBuild,
  getBuildRecords,
  isTerminalStatus,
  type Build,
  type Project,
} from '../../store/index.js';
import { loadResumeRecords, saveStepExit } from '../../store/resume.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { until } from '../../testing/until.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import { TestRepo } from '../testing/git-repo.js';
import { DatabaseBuildControl } from './build-control.js';
import { ExecutorIds, ExecutorPool } from './executor-pool.js';
import { reconcile } from './reconciler.js';
import { Scheduler } from './scheduler.js';

/** The step prints two lines, waits for a flag raised by the test, prints one more and exits. */
const pipeline = (exit: number) => `
stages:
  - name: test
    steps:
      - name: unit
        commands: ['echo one', 'warn two', 'await go-\${SLIPWAY_BUILD_ID}', 'echo three', 'exit ${exit}']
  - name: after
    steps:
      - name: report
        commands: [echo reported]
`;

/**
 * A server restart with a surviving engine, at scheduler level: one MemoryExecutor (its steps
 * live in the object, as containers live in the engine) under two schedulers one after the
 * other. The first detaches (SIGTERM); the second, with the same owner id, reconciles at
 * start-up and re-attaches.
 */
describe('a restarted server re-attaches to running builds (memory executor, sqlite)', () => {
  let t: TestDatabase;
  let dataDir: string;
  const engine = new MemoryExecutor();
  const ids = new ExecutorIds('resume-test');
  const live: Scheduler[] = [];
  const logs = () => new FsLogStore(join(dataDir, 'logs'));

  /** One "server process": a scheduler over the shared engine, reconciled at start-up. */
  async function startServer(owner = 'replica-a', leaseMs = 60_000) {
    const hub = new LogHub();
    const store = logs();
    const scheduler = new Scheduler({
      db: t.db,
      executors: new ExecutorPool(new Map([['memory', engine]]), new Map(), 'memory'),
      logs: store,
      hub,
      owner,
      ids,
      workRoot: join(dataDir, 'work'),
      globalLimit: 4,
      pollMs: 50,
      leaseMs,
    });
    live.push(scheduler);
    const report = await reconcile(
      {
        db: t.db,
        executors: [engine],
        logs: store,
        hub,
        owner,
        ids,
        leaseMs,
        activeHere: () => scheduler.activeIds(),
        resume: (build) => scheduler.resume(build),
      },
      owner === 'replica-a',
    );
    scheduler.start();
    return { scheduler, report, control: new DatabaseBuildControl(t.db, () => scheduler.kick()) };
  }

  async function project(slug: string, exit: number, text = pipeline(exit)): Promise<Project> {
    const repo = await TestRepo.create({ '.slipway.yml': text });
    return createProject(t.db, { slug, repoUrl: repo.url });
  }

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-resume-'));
  });

  afterAll(async () => {
    for (const scheduler of live) await scheduler.stop();
    await t?.destroy();
  });

  const text = async (id: number) => (await logs().read(id, 0)).map((l) => l.text);
  const finished = (id: number) =>
    until(async () => {
      const build = await getBuild(t.db, id);
      return build && isTerminalStatus(build.status) ? build : undefined;
    });
  const once = (lines: string[], expected: string[]) => {
    for (const line of expected)
      expect(
        lines.filter((l) => l === line),
        line,
      ).toEqual([line]);
  };

  /** Starts a build on a first server and detaches it once its step printed its first lines. */
  async function buildLeftRunning(on: Project, leaseMs?: number): Promise<Build> {
    const first = await startServer('replica-a', leaseMs);
    const build = await first.control.trigger(on, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'test',
    });
    await until(async () => (await text(build.id)).includes('two'));
    await first.scheduler.detach();
    const left = await getBuild(t.db, build.id);
    expect(left).toMatchObject({ status: 'running', leaseOwner: 'replica-a' });
    expect(engine.destroyed).not.toContain(ids.of(build.id));
    return left!;
  }

  it('goes on where the log ends: every line once, later stages run, the real exit decides', async () => {
    const build = await buildLeftRunning(await project('acme/resume-ok', 0));
    const second = await startServer();
    expect(second.report.resumed).toEqual([build.id]);
    engine.raise(`go-${build.id}`);
    const done = await finished(build.id);
    expect(done.status).toBe('success');
    const lines = await text(build.id);
    once(lines, ['one', 'two', 'three', 'reported']);
    expect(lines.find((l) => l.startsWith('server restarted:'))).toMatch(
      /^server restarted: re-attached to step test\/unit \(memory step .+\) at line 2$/,
    );
    const steps = (await getBuildRecords(t.db, build.id)).flatMap((s) => s.steps);
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['unit', 'success', 1],
      ['report', 'success', 1],
    ]);
    expect(engine.resumed).toContain(ids.of(build.id));
    await second.scheduler.stop();
  });

  it('a step that failed while no server watched: its exit code and output are read back', async () => {
    const build = await buildLeftRunning(await project('acme/resume-fail', 3));
    engine.raise(`go-${build.id}`); // the step ends with no server: exit 3
    const second = await startServer();
    const done = await finished(build.id);
    expect(done.status).toBe('failure');
    const [unit, report] = (await getBuildRecords(t.db, build.id)).flatMap((s) => s.steps);
    expect(unit).toMatchObject({ status: 'failure', exitCode: 3, reason: { code: 'exit_code' } });
    expect(report?.status).toBe('skipped');
    once(await text(build.id), ['one', 'two', 'three']);
    await second.scheduler.stop();
  });

  it('a step that ended and was released while its server died before the records: the stored end', async () => {
    // No output after the wait: what the step printed was stored before the detach.
    const quiet = pipeline(3).replace("'echo three', ", '');
    const build = await buildLeftRunning(await project('acme/resume-released', 3, quiet));
    engine.raise(`go-${build.id}`);
    // What the dying server did: the step's exit stored (its output was), then the release.
    const [unit] = (await loadResumeRecords(t.db, build.id)).stages.flatMap((s) => s.steps);
    const handle = { buildId: ids.of(build.id), workspace: '' };
    expect(await engine.waitStep(handle, unit!.ref!, new AbortController().signal)).toEqual({
      kind: 'exited',
      exitCode: 3,
    });
    expect(await saveStepExit(t.db, unit!.id, 1, { kind: 'exited', exitCode: 3 })).toBe(true);
    await engine.releaseStep(handle, unit!.ref!);

    const second = await startServer();
    const done = await finished(build.id);
    expect(done.status, JSON.stringify(done.reason)).toBe('failure');
    const [ended, report] = (await getBuildRecords(t.db, build.id)).flatMap((s) => s.steps);
    expect(ended).toMatchObject({ status: 'failure', exitCode: 3, reason: { code: 'exit_code' } });
    expect(report?.status).toBe('skipped');
    const lines = await text(build.id);
    once(lines, ['one', 'two']);
    expect(lines.find((l) => l.startsWith('server restarted:'))).toMatch(
      /^server restarted: step test\/unit \(memory step .+\) had ended \(exit code 3\); its stored end is taken$/,
    );
    await second.scheduler.stop();
  });

  it('cancel reaches a resumed build', async () => {
    const build = await buildLeftRunning(await project('acme/resume-cancel', 0));
    const second = await startServer();
    await until(() => Promise.resolve(second.scheduler.activeIds().includes(build.id)));
    await second.control.cancel(build.id, 'alice');
    const done = await finished(build.id);
    expect(done.status).toBe('cancelled');
    const [unit] = (await getBuildRecords(t.db, build.id)).flatMap((s) => s.steps);
    expect(unit?.status).toBe('cancelled');
    await second.scheduler.stop();
  });

  it('an engine reset while down: lost, with the step and the reason', async () => {
    const build = await buildLeftRunning(await project('acme/resume-gone', 0));
    engine.vanish('test/unit');
    const second = await startServer();
    const done = await finished(build.id);
    expect(done.status).toBe('lost');
    expect(done.reason?.message).toMatch(/^the memory step of step test\/unit \(.+\) is gone: /);
    expect((await text(build.id)).at(-1)).toBe(`build lost: ${done.reason?.message}`);
    await second.scheduler.stop();
  });

  it('another replica takes over a build whose lease expired and re-attaches', async () => {
    const build = await buildLeftRunning(await project('acme/resume-replica', 0), 300);
    // replica-a is gone (it renews nothing any more): its lease runs out.
    await until(async () =>
      (await getBuild(t.db, build.id))!.leaseExpiresAt! < Date.now() ? true : undefined,
    );
    const other = await startServer('replica-b');
    expect(other.report.resumed).toEqual([build.id]);
    expect((await getBuild(t.db, build.id))?.leaseOwner).toBe('replica-b');
    engine.raise(`go-${build.id}`);
    expect((await finished(build.id)).status).toBe('success');
    once(await text(build.id), ['one', 'two', 'three', 'reported']);
    await other.scheduler.stop();
  });
});
