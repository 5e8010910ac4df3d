import { afterAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { containersOf, stepContainers } from './engine.js';
import {
  cleanup,
  execFileAsync,
  FINISHED,
  ServerProcess,
  waitFor,
  type Api,
  buildFinished,
} from '../server/server-harness.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('slipway server restarts on a container engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}

const SUFFIX = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/** A step that prints, then waits until the test creates /tmp/go in its container, then ends with `exit`. */
const PIPELINE = (exit: number) =>
  [
    'image: busybox:latest',
    'steps:',
    '  - name: work',
    '    commands:',
    '      - echo before',
    '      - while [ ! -f /tmp/go ]; do sleep 0.2; done',
    '      - echo after',
    `      - exit ${exit}`,
    '',
  ].join('\n');

/** The step container of a project's running build (its only step). */
async function stepContainer(project: string): Promise<string> {
  const ids = await stepContainers(project);
  if (ids.length !== 1) throw new Error(`expected one step container of ${project}, found ${ids.length}`);
  return ids[0]!;
}

const finished = (api: Api, id: number) => buildFinished(api, id);

/**
 * Real server processes (docker executor on Podman) stopped while steps run: by `kill -9`
 * (a step ends meanwhile with exit 3; another's container is removed as an engine reset
 * would) and by SIGTERM; the next process on the same data dir re-attaches.
 */
describe.skipIf(plan.action !== 'run')('slipway server: builds outlive the server process', () => {
  afterAll(cleanup);

  it(
    'kill -9: a step that failed while down ends failure/3; a removed container ends lost; SIGTERM leaves the build to the successor',
    { timeout: 300_000 },
    async () => {
      const engine = found.available ? found.engine.address : undefined;
      const first = await ServerProcess.start({
        executor: 'docker',
        ...(engine !== undefined && { engine }),
      });
      const api = first.api();
      const fails = `restart/fails-${SUFFIX}`;
      const gone = `restart/gone-${SUFFIX}`;
      const term = `restart/term-${SUFFIX}`;
      const trigger = async (slug: string, exit: number) => {
        const repo = await TestRepo.create({ '.slipway.yml': PIPELINE(exit) });
        await api.ok('POST', '/projects', { slug, repoUrl: repo.url });
        return api.ok<Build>('POST', `/projects/${slug}/builds`, { branch: 'main' });
      };
      // The step runs (its container is up and the server stored its ref with the record).
      const running = (on: Api, build: Build, slug: string) =>
        waitFor(
          `the step of build ${build.id} to run`,
          async () => {
            const now = await on.build(build.id);
            if (FINISHED.has(now.status)) throw new Error(`build ${build.id} ended ${now.status}`);
            if (now.stages[0]?.steps[0]?.status !== 'running') return undefined;
            return (await stepContainer(slug).catch(() => undefined)) ? true : undefined;
          },
          120_000,
          200,
        );
      const failing = await trigger(fails, 3);
      const removed = await trigger(gone, 0);
      await Promise.all([running(api, failing, fails), running(api, removed, gone)]);

      await first.kill9();
      // While no server runs: one step ends with exit 3, the other's container is removed.
      const failingContainer = await stepContainer(fails);
      await execFileAsync('podman', ['exec', failingContainer, 'touch', '/tmp/go']);
      await execFileAsync('podman', ['wait', failingContainer]);
      const removedContainer = await stepContainer(gone);
      await execFileAsync('podman', ['rm', '-f', removedContainer]);

      const second = await first.restart();
      const api2 = second.api();
      const failed = await finished(api2, failing.id);
      expect(failed.status).toBe('failure');
      const step = (await api2.build(failing.id)).stages[0]!.steps[0]!;
      expect(step).toMatchObject({ status: 'failure', exitCode: 3 });
      const failedLog = (await api2.storedLog(failing.id)).filter((l) => l.step === 'work');
      expect(failedLog.filter((l) => l.stream !== 'system').map((l) => l.text)).toEqual(['before', 'after']);

      // It failed once in a full CI run (not ended after 120 s; never alone, nor at load 8):
      // the servers' logs say next time where it stood.
      const lost = await finished(api2, removed.id).catch((error: unknown) => {
        console.error(
          `first server's log:\n${first.log.slice(-8000)}\nsecond server's log:\n${second.log.slice(-20000)}`,
        );
        throw error;
      });
      expect(lost.status).toBe('lost');
      expect(lost.reason?.message).toMatch(
        new RegExp(`^the container of step default/work \\(${removedContainer.slice(0, 12)}\\) is gone: `),
      );

      // SIGTERM: the server leaves the build running and exits; its successor finishes it.
      // Same port and token: the first client reaches the second server.
      const left = await trigger(term, 0);
      await running(api2, left, term);
      await second.stop();
      expect(second.log).toMatch(/SIGTERM: stopping; running builds are left for the next server/);
      const container = await stepContainer(term);
      const third = await second.restart();
      const api3 = third.api();
      await execFileAsync('podman', ['exec', container, 'touch', '/tmp/go']);
      const done = await finished(api3, left.id);
      expect(done.status).toBe('success');
      const log = await api3.storedLog(left.id);
      expect(log.filter((l) => l.step === 'work' && l.stream !== 'system').map((l) => l.text)).toEqual([
        'before',
        'after',
      ]);
      expect(log.map((l) => l.seq)).toEqual(log.map((_, i) => i + 1));

      await waitFor(
        'the containers of the finished builds to be removed',
        async () => {
          const all = [
            ...(await containersOf(fails)),
            ...(await containersOf(gone)),
            ...(await containersOf(term)),
          ];
          return all.length === 0 ? true : undefined;
        },
        60_000,
        500,
      );
    },
  );
});
