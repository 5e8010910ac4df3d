/**
 * Real server processes on the LOCAL executor (steps run as the build user, each under a
 * detached watcher that records its pids and exit on disk, output in files) stopped while steps
 * run: by `kill -9` (one step keeps printing, one exits 3 while no server runs, one build has a
 * service) and by SIGTERM. The next process on the same data dir and workspace root re-attaches:
 * every line exactly once, the real exit code decides, nothing of the builds is left behind
 * (no process under the workspace root, no build root). A build with a service cannot be
 * re-attached (services are piped child processes of the server) and ends `lost` naming them.
 */
import { chmod, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Build, LogLine } from '../../src/server/api/dto.js';
import { scanBuildRoots } from '../../src/executors/local/build-dirs.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import {
  cleanup,
  FINISHED,
  oneTo,
  ServerProcess,
  tempDir,
  waitFor,
  type Api,
  buildFinished,
} from '../server/server-harness.js';

/**
 * A step that prints `tick <n>` until the test creates `<control>/<name>`, then `after`, then
 * ends with `exit`; with `service`, the build also runs a service that does nothing.
 */
const pipeline = (control: string, name: string, exit: number, service = false): string =>
  [
    ...(service ? ['services:', '  - name: db', '    commands: ["while true; do sleep 1; done"]'] : []),
    'steps:',
    '  - name: work',
    '    commands:',
    '      - i=0',
    `      - while [ ! -f ${control}/${name} ]; do i=$((i+1)); echo "tick $i"; sleep 0.2; done`,
    '      - echo after',
    `      - exit ${exit}`,
    '',
  ].join('\n');

/** Live processes whose command line names `dir` or whose working directory is in it. */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
      if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`)) found.push(`${pid} ${cmdline}`);
    } catch {
      // Ended meanwhile.
    }
  }
  return found;
}

/** The build root (under the workspace root) of a project's build. */
async function buildRoot(workspaceRoot: string, project: string): Promise<string> {
  const roots = (await scanBuildRoots(workspaceRoot)).filter((r) => r.marker.project === project);
  if (roots.length !== 1) throw new Error(`expected one build root of ${project}, found ${roots.length}`);
  return roots[0]!.root;
}

const workLines = (log: LogLine[]): string[] =>
  log.filter((l) => l.step === 'work' && l.stream !== 'system').map((l) => l.text);

/** `tick 1` … `tick n`, then `after`: what a step printed, each line exactly once. */
function expectTicksThenAfter(lines: string[]): number {
  const ticks = lines.length - 1;
  expect(ticks).toBeGreaterThan(0);
  expect(lines).toEqual([...oneTo(ticks).map((i) => `tick ${i}`), 'after']);
  return ticks;
}

const finished = (api: Api, id: number) => buildFinished(api, id);

/** Resolves once the stored log of the build holds `tick <n>` of its step. */
const printed = (api: Api, id: number, n: number) =>
  waitFor(
    `build ${id} to have stored tick ${n}`,
    async () => {
      const build = await api.build(id);
      if (FINISHED.has(build.status)) throw new Error(`build ${id} ended ${build.status}`);
      return workLines(await api.storedLog(id)).includes(`tick ${n}`) ? true : undefined;
    },
    120_000,
    200,
  );

describe('slipway server --executor local: builds outlive the server process', () => {
  afterAll(cleanup);

  it(
    'kill -9: re-attached steps end as they really did, every line once; a service build ends lost; SIGTERM leaves the build to the successor; nothing left behind',
    { timeout: 300_000 },
    async () => {
      const suffix = `${process.pid.toString(36)}${Date.now().toString(36)}`;
      // Where the test tells steps to finish: the build user must see the files.
      const control = await tempDir('local-restart-control');
      await chmod(control, 0o755);
      const workspaceRoot = await tempDir('local-restart-workspaces');
      const first = await ServerProcess.start({ executor: 'local', workspaceRoot, globalLimit: 4 });
      const api = first.api();
      const go = (name: string) => writeFile(join(control, name), '');
      const trigger = async (slug: string, yaml: string) => {
        const repo = await TestRepo.create({ '.slipway.yml': yaml });
        await api.ok('POST', '/projects', { slug, repoUrl: repo.url });
        return api.ok<Build>('POST', `/projects/${slug}/builds`, { branch: 'main' });
      };
      const prints = `local/prints-${suffix}`;
      const fails = `local/fails-${suffix}`;
      const serviced = `local/service-${suffix}`;
      const term = `local/term-${suffix}`;
      const printing = await trigger(prints, pipeline(control, 'prints', 0));
      const failing = await trigger(fails, pipeline(control, 'fails', 3));
      const withService = await trigger(serviced, pipeline(control, 'service', 0, true));
      await Promise.all([printing, failing, withService].map((b) => printed(api, b.id, 2)));

      const storedBefore = workLines(await api.storedLog(printing.id)).length;
      await first.kill9();
      // While no server runs: one step goes on printing, the other ends with exit 3.
      const failingRoot = await buildRoot(workspaceRoot, fails);
      expect(await processesUnder(failingRoot)).not.toEqual([]);
      await go('fails');
      await waitFor(
        'the failing step and its watcher to end',
        async () => ((await processesUnder(failingRoot)).length === 0 ? true : undefined),
        60_000,
        200,
      );

      const second = await first.restart();
      const api2 = second.api();
      // The re-attached step's output flows again before it is told to end.
      await waitFor(
        'the re-attached step to print on',
        async () => {
          const lines = workLines(await api2.storedLog(printing.id));
          return lines.length > storedBefore + 2 ? lines.length : undefined;
        },
        120_000,
        200,
      );
      await go('prints');
      const done = await finished(api2, printing.id);
      expect(done.status).toBe('success');
      const printLog = await api2.storedLog(printing.id);
      expectTicksThenAfter(workLines(printLog));
      expect(printLog.map((l) => l.seq)).toEqual(oneTo(printLog.length));
      expect(printLog.filter((l) => l.text.startsWith('server restarted: re-attached'))).toHaveLength(1);

      const failed = await finished(api2, failing.id);
      expect(failed.status).toBe('failure');
      expect((await api2.build(failing.id)).stages[0]!.steps[0]).toMatchObject({
        status: 'failure',
        exitCode: 3,
      });
      expectTicksThenAfter(workLines(await api2.storedLog(failing.id)));

      const lost = await finished(api2, withService.id);
      expect(lost.status).toBe('lost');
      expect(lost.reason?.message).toMatch(/cannot re-attach build .*: its services \(db\)/);

      // SIGTERM: the server leaves the build running and exits; its successor finishes it.
      // `trigger` uses the first client: same port and token, so it reaches the second server.
      const left = await trigger(term, pipeline(control, 'term', 0));
      await printed(api2, left.id, 2);
      await second.stop();
      expect(second.log).toMatch(/SIGTERM: stopping; running builds are left for the next server/);
      const termRoot = await buildRoot(workspaceRoot, term);
      expect(await processesUnder(termRoot)).not.toEqual([]);
      const third = await second.restart();
      const api3 = third.api();
      await printed(api3, left.id, workLines(await api3.storedLog(left.id)).length + 2);
      await go('term');
      const ended = await finished(api3, left.id);
      expect(ended.status).toBe('success');
      const termLog = await api3.storedLog(left.id);
      expectTicksThenAfter(workLines(termLog));
      expect(termLog.map((l) => l.seq)).toEqual(oneTo(termLog.length));

      // Nothing of the builds is left: no step, watcher or service process, no build root.
      await waitFor(
        'the processes and build roots of the finished builds to be gone',
        async () =>
          (await processesUnder(workspaceRoot)).length === 0 &&
          (await scanBuildRoots(workspaceRoot)).length === 0
            ? true
            : undefined,
        60_000,
        250,
      );
    },
  );
});
