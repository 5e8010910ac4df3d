import { afterAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { allFinished, cleanup, maxOverlap, oneTo, sampleQueue, ServerProcess } from './server-harness.js';

const TRIGGERS = 100;
const LIMIT = 2;
const BRANCHES = ['main', 'b1', 'b2', 'b3'];

/**
 * 100 triggers at once against a real server process with `--global-limit 2` (local executor):
 * every build runs to success, never more than two at once, numbers 1..100 without gaps, and
 * each branch's builds run one at a time in trigger order (policy `queue`). (It was 200: at a
 * load of 10 the 200 builds, run two at a time, took longer than the test may; the races it
 * looks for are in the 100 simultaneous triggers, not in the length of the queue after them.)
 */
describe('slipway server: a burst of 100 triggers', () => {
  afterAll(cleanup);

  it('runs all 100 under the global limit, numbered 1..100', { timeout: 240_000 }, async () => {
    const repo = await TestRepo.create({
      '.slipway.yml': 'steps:\n  - name: say\n    commands: ["echo number $SLIPWAY_BUILD_NUMBER"]\n',
    });
    // Several branches, so that the global limit (not the branch lock) is what holds builds back.
    for (const branch of BRANCHES.slice(1)) repo.git('branch', branch);
    const server = await ServerProcess.start({ executor: 'local', globalLimit: LIMIT });
    const api = server.api();
    await api.ok('POST', '/projects', { slug: 'burst/web', repoUrl: repo.url, concurrencyPolicy: 'queue' });

    const sampler = sampleQueue([api]);
    const triggered = await Promise.all(
      oneTo(TRIGGERS).map((i) =>
        api.request<Build>('POST', '/projects/burst/web/builds', {
          json: { branch: BRANCHES[i % BRANCHES.length] },
        }),
      ),
    );
    expect(triggered.map((t) => t.status)).toEqual(triggered.map(() => 201));
    const builds = await allFinished(api, 'burst/web', TRIGGERS, 180_000);
    const { maxActive, samples } = await sampler.stop();

    expect(builds.filter((b) => b.status !== 'success').map((b) => `#${b.number} ${b.status}`)).toEqual([]);
    expect(builds.map((b) => b.number).sort((a, b) => a - b)).toEqual(oneTo(TRIGGERS));
    expect(new Set(triggered.map((t) => t.body.number)).size).toBe(TRIGGERS);
    // Never more than the limit active at once: as sampled live, and from the recorded times.
    expect(samples).toBeGreaterThan(10);
    expect(maxActive).toBeLessThanOrEqual(LIMIT);
    expect(maxOverlap(builds)).toBeLessThanOrEqual(LIMIT);
    // …and the limit is what held them back: two did run side by side.
    expect(maxOverlap(builds)).toBe(LIMIT);
    for (const branch of BRANCHES) {
      const ofBranch = builds.filter((b) => b.branch === branch).sort((a, b) => a.number - b.number);
      expect(ofBranch.length).toBe(TRIGGERS / BRANCHES.length);
      expect(maxOverlap(ofBranch)).toBe(1);
      // FIFO within a branch: starts in number order.
      const starts = ofBranch.map((b) => Date.parse(b.startedAt!));
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    }
    // Each build ran its own step once, with its own number.
    for (const build of builds) {
      const said = (await api.storedLog(build.id)).filter((l) => l.step === 'say').map((l) => l.text);
      expect(said).toEqual([`number ${build.number}`]);
    }
  });
});
