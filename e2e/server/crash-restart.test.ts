import { afterAll, describe, expect, it } from 'vitest';
import type { Build, LogLine, Queue } from '../../src/server/api/dto.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import {
  allFinished,
  cleanup,
  execFileAsync,
  followLog,
  oneTo,
  FINISHED,
  ServerProcess,
  waitFor,
  type LogFollower,
} from './server-harness.js';

// The servers with the docker executor live in this one file, so that they never run side by
// side with each other: the second describe shows why (reconciliation of one installation
// removes containers of another; see there).
const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('slipway server on a container engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}

const PROJECT = `crash/web-${process.pid.toString(36)}${Date.now().toString(36)}`;
/** Triggered in this order, global limit 2: #1 main and #2 dev run; #3..#6 wait. */
const BRANCHES = ['main', 'dev', 'main', 'dev', 'feat', 'main'];

/** What the engine still holds of this test's project, by label: `container <name> <state>`, `volume <name>`. */
async function leftovers(): Promise<string[]> {
  const filters = ['--filter', 'label=slipway.managed=true', '--filter', `label=slipway.project=${PROJECT}`];
  const containers = JSON.parse(
    (await execFileAsync('podman', ['ps', '-a', ...filters, '--format', 'json'])).stdout || '[]',
  ) as { Names: string[]; State: string }[];
  // `volume ls` may OR several label filters: the project is checked here too.
  const volumes = (
    JSON.parse(
      (await execFileAsync('podman', ['volume', 'ls', ...filters, '--format', 'json'])).stdout || '[]',
    ) as { Name: string; Labels?: Record<string, string> }[]
  ).filter((v) => v.Labels?.['slipway.project'] === PROJECT);
  return [
    ...containers.map((c) => `container ${c.Names.join(',')} ${c.State}`),
    ...volumes.map((v) => `volume ${v.Name}`),
  ];
}

/**
 * `kill -9` of a real server (docker executor on Podman) while two builds run and four wait
 * behind branch locks and the global limit; then a restart on the same port and data dir.
 * The restarted server re-attaches to the steps that outlived it: their logs go on where the
 * stored log ends (every line exactly once) and they end `success` as they really did.
 * Everything queued runs; no log line a reader had received is missing; no container of a
 * finished build remains.
 */
describe.skipIf(plan.action !== 'run')('slipway server: kill -9 and restart', () => {
  afterAll(cleanup);

  it(
    're-attaches to what was running, runs what was queued, every line exactly once',
    { timeout: 240_000 },
    async () => {
      const repo = await TestRepo.create({
        '.slipway.yml': [
          'image: busybox:latest',
          'steps:',
          '  - name: work',
          '    commands:',
          '      - echo "start $SLIPWAY_BUILD_NUMBER"',
          // Only #1 and #2 run across the kill (10 s of work); what was queued needs no time.
          '      - for i in 1 2 3 4 5; do echo "tick $i"; sleep $((2 * (SLIPWAY_BUILD_NUMBER <= 2))); done',
          '      - echo done',
          '',
        ].join('\n'),
      });
      repo.git('branch', 'dev');
      repo.git('branch', 'feat');
      const engine = found.available ? found.engine.address : undefined;
      const first = await ServerProcess.start({
        executor: 'docker',
        globalLimit: 2,
        ...(engine !== undefined && { engine }),
      });
      const api = first.api();
      await api.ok('POST', '/projects', { slug: PROJECT, repoUrl: repo.url, concurrencyPolicy: 'queue' });
      const triggered: Build[] = [];
      for (const branch of BRANCHES)
        triggered.push(await api.ok<Build>('POST', `/projects/${PROJECT}/builds`, { branch }));
      expect(triggered.map((b) => b.number)).toEqual(oneTo(BRANCHES.length));

      // A live reader on every build, queued ones included.
      const readers = new Map<number, LogFollower>(triggered.map((b) => [b.id, followLog(api, b.id)]));
      const [one, two] = triggered;
      await waitFor(
        'builds #1 and #2 to be running with output read live',
        () =>
          [one!, two!].every((b) => readers.get(b.id)!.lines.some((l) => l.text === 'tick 1'))
            ? true
            : undefined,
        90_000,
      );
      const queue = await api.ok<Queue>('GET', '/queue');
      expect(queue.running.map((b) => `${b.number} ${b.status}`).sort()).toEqual(['1 running', '2 running']);
      expect(queue.queued.map((b) => `${b.number} ${b.waitingFor}`)).toEqual([
        '3 branch_lock',
        '4 branch_lock',
        '5 global_limit',
        '6 branch_lock',
      ]);

      await first.kill9();
      const ends = await Promise.all([...readers.values()].map((r) => r.done));
      expect(ends.every((end) => end !== 'end')).toBe(true);
      // What each reader had received before the kill (the server acknowledged these lines).
      const received = new Map<number, LogLine[]>([...readers].map(([id, r]) => [id, [...r.lines]]));
      expect(received.get(one!.id)!.length).toBeGreaterThan(0);
      // The steps outlived the server: their containers are still there (running, or ended since:
      // a step has 10 s of work left once `tick 1` was read, and the machine may be busy). Nothing
      // slow (an engine CLI) runs between that read and the kill, so that both still run then.
      expect((await leftovers()).some((l) => l.startsWith('container '))).toBe(true);

      const second = await first.restart();
      expect(second.url).toBe(first.url);
      const after = second.api();
      // A reader that reconnects with Last-Event-ID gets exactly what it missed.
      const lastSeen = received.get(one!.id)!.at(-1)!.seq;
      const resumed = followLog(after, one!.id, { lastEventId: lastSeen });

      const builds = await allFinished(after, PROJECT, BRANCHES.length, 180_000);
      const byNumber = new Map(builds.map((b) => [b.number, b]));
      expect([...byNumber.keys()].sort((x, y) => x - y)).toEqual(oneTo(BRANCHES.length));
      expect(new Set(builds.map((b) => b.id)).size).toBe(BRANCHES.length);
      // Running at the kill: re-attached and ended as they really did. Queued: run after the restart.
      for (const n of oneTo(6)) {
        const build = byNumber.get(n)!;
        // The reason and the server's notes say why, should a build end otherwise.
        const why = `${JSON.stringify(build.reason)}; ${(await after.storedLog(build.id))
          .filter((l) => l.stream === 'system')
          .map((l) => l.text)
          .join(' | ')}`;
        expect(`#${n} ${build.status}`, why).toBe(`#${n} success`);
      }
      expect(second.log).toMatch(/reconciled: 2 build\(s\) resumed/);
      // No stage or step record stays active either.
      for (const build of builds) {
        const detail = await after.build(build.id);
        const open = detail.stages
          .flatMap((s) => [s, ...s.steps])
          .filter((r) => ['running', 'pending', 'queued', 'waiting'].includes(r.status));
        expect(open.map((r) => `#${build.number} ${r.name} ${r.status}`)).toEqual([]);
      }

      // No line a reader had received is missing from the stored log, and seqs stay gapless.
      for (const build of builds) {
        const stored = await after.storedLog(build.id);
        expect(stored.map((l) => l.seq)).toEqual(oneTo(stored.length));
        const bySeq = new Map(stored.map((l) => [l.seq, l]));
        for (const line of received.get(build.id) ?? []) expect(bySeq.get(line.seq)).toEqual(line);
        expect(stored.filter((l) => l.step === 'work').map((l) => l.text)).toEqual([
          `start ${build.number}`,
          ...oneTo(5).map((i) => `tick ${i}`),
          'done',
        ]);
        const notes = stored.filter((l) => l.text.startsWith('server restarted:')).map((l) => l.text);
        if (build.number <= 2) {
          expect(notes).toHaveLength(1);
          // Re-attached; or, had the server died between storing the step's end and removing its
          // container (a window of milliseconds), that stored end taken.
          expect(notes[0]).toMatch(
            /^server restarted: (re-attached to step default\/work \(container [0-9a-f]{12}\) at line \d+|step default\/work \(container [0-9a-f]{12}\) had ended \(exit code 0\); its stored end is taken)$/,
          );
        } else expect(notes).toEqual([]);
      }
      expect(await resumed.done).toBe('end');
      const before = received.get(one!.id)!;
      expect([...before, ...resumed.lines]).toEqual(await after.storedLog(one!.id));

      // Nothing of the finished builds is left on the engine.
      await waitFor(
        'the leftovers of finished builds to be removed',
        async () => ((await leftovers()).length === 0 ? true : undefined),
        60_000,
        500,
      );
    },
  );
});

/**
 * Two independent Slipway installations (own data dir, own SQLite) on one container engine, as
 * on a shared CI host or when tests run side by side. Both number their builds from 1 and
 * label containers `slipway.build=s<id>`: the reconciliation of one must not remove what a
 * build of the other still runs.
 */
describe.skipIf(plan.action !== 'run')('slipway server: two installations on one engine', () => {
  afterAll(cleanup);

  it(
    "a starting server leaves another installation's running build alone",
    { timeout: 180_000 },
    async () => {
      const repo = await TestRepo.create({
        '.slipway.yml': [
          'image: busybox:latest',
          'steps:',
          '  - name: work',
          '    commands: ["echo begin", "sleep 6", "echo end"]',
          '',
        ].join('\n'),
      });
      const engine = found.available ? { engine: found.engine.address } : {};
      const first = await ServerProcess.start({ executor: 'docker', ...engine });
      const api = first.api();
      await api.ok('POST', '/projects', { slug: 'shared/one', repoUrl: repo.url });
      const build = await api.ok<Build>('POST', '/projects/shared/one/builds', { branch: 'main' });
      const reader = followLog(api, build.id);
      await waitFor(
        'the step to run',
        () => (reader.lines.some((l) => l.text === 'begin') ? true : undefined),
        90_000,
      );

      // A second installation starts (and reconciles) while build s1 of the first one runs.
      await ServerProcess.start({ executor: 'docker', ...engine });

      const done = await waitFor(
        'the build to finish',
        async () => {
          const b = await api.build(build.id);
          return FINISHED.has(b.status) ? b : undefined;
        },
        90_000,
        250,
      );
      expect(`${done.status} ${done.reason?.message ?? ''}`.trim()).toBe('success');
      expect(reader.lines.map((l) => l.text)).toContain('end');
    },
  );
});
