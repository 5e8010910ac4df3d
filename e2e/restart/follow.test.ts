import { afterAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/contract/index.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { until } from '../../src/testing/until.js';
import { collect, startCli } from '../cli-helpers.js';
import { cleanup, ServerProcess, tempDir } from '../server/server-harness.js';
import { containersOf, GATED_PIPELINE, openGate } from './engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('following a build across a restart on a container engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}

const SUFFIX = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/**
 * The user story of issue 11: `slipway logs <project> <n> -f` (the real CLI) follows builds
 * while their server (docker executor on Podman) is killed with -9 and started again on the
 * same data dir and port. The follower reconnects by itself with Last-Event-ID, prints every
 * line exactly once, and exits with the build's final status (0 success, 1 failure).
 */
describe.skipIf(plan.action !== 'run')('slipway logs -f across a server restart', () => {
  afterAll(cleanup);

  it('reconnects, prints every line once and exits with the final status', { timeout: 240_000 }, async () => {
    const engine = found.available ? { engine: found.engine.address } : {};
    const first = await ServerProcess.start({ executor: 'docker', ...engine });
    const api = first.api();
    const cwd = await tempDir('follow-cwd');
    const follow = async (slug: string, exit: number) => {
      const repo = await TestRepo.create({ '.slipway.yml': GATED_PIPELINE(exit) });
      await api.ok('POST', '/projects', { slug, repoUrl: repo.url });
      const build = await api.ok<Build>('POST', `/projects/${slug}/builds`, { branch: 'main' });
      const child = startCli(['logs', slug, String(build.number), '-f'], {
        cwd,
        env: { SLIPWAY_SERVER: first.url, SLIPWAY_TOKEN: first.token },
      });
      const output = { stdout: '', stderr: '' };
      child.stdout!.on('data', (d: Buffer) => (output.stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output.stderr += d.toString()));
      return { slug, output, result: collect(child) };
    };
    const passing = await follow(`follow/ok-${SUFFIX}`, 0);
    const failing = await follow(`follow/fails-${SUFFIX}`, 3);
    const followers = [passing, failing];
    await until(() => Promise.resolve(followers.every((f) => f.output.stdout.includes('line 3'))), 120_000);

    await first.kill9();
    // Both followers notice while no server runs (connection refused is retried).
    await until(
      () =>
        Promise.resolve(followers.every((f) => f.output.stderr.includes('connection to the server lost'))),
      60_000,
    );
    const second = await first.restart();
    for (const f of followers) await openGate(f.slug);
    const [ok, fails] = await Promise.all(followers.map((f) => f.result));

    const workLines = (stdout: string) =>
      stdout.split('\n').filter((l) => /^\[default\/work\] line \d$/.test(l));
    const expected = [1, 2, 3, 4, 5, 6].map((i) => `[default/work] line ${i}`);
    expect(ok!.code, ok!.stderr).toBe(0);
    expect(workLines(ok!.stdout)).toEqual(expected);
    expect(ok!.stderr).toMatch(/connection to the server lost; reconnecting \(for up to 2 minutes\)…/);
    expect(ok!.stderr).toMatch(/reconnected; resuming the log/);
    expect(ok!.stderr).toMatch(/#1 success/);
    expect(fails!.code, fails!.stderr).toBe(1);
    expect(workLines(fails!.stdout)).toEqual(expected);
    expect(fails!.stderr).toMatch(/#1 failure/);
    // What the followers printed is the stored log, each line once.
    for (const [f, printed] of [
      [passing, ok!],
      [failing, fails!],
    ] as const) {
      const build = (await second.api().allBuilds(f.slug))[0]!;
      const stored = await second.api().storedLog(build.id);
      expect(printed.stdout.trim().split('\n').length).toBe(stored.length);
    }
    await until(
      async () =>
        (await Promise.all(followers.map((f) => containersOf(f.slug)))).every((c) => c.length === 0),
      60_000,
    );
  });
});
