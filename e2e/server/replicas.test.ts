import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import {
  createScratchDatabase,
  postgresUrlForTests,
  type ScratchDatabase,
} from '../../src/store/testing/postgres.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import {
  allFinished,
  cleanup,
  maxOverlap,
  oneTo,
  sampleQueue,
  ServerProcess,
  tempDir,
} from './server-harness.js';

const BUILDS = 60;
const LIMIT = 3;
const BRANCHES = ['main', 'b1', 'b2', 'b3'];

const baseUrl = await postgresUrlForTests();

/**
 * Two `slipway server` processes (different ports and replica ids) on one PostgreSQL database,
 * both taking builds from the same queue: every build runs exactly once, the global limit and
 * the branch locks hold across both, and numbers stay unique.
 */
describe.skipIf(baseUrl === undefined)('slipway server: two replicas on one PostgreSQL database', () => {
  let database: ScratchDatabase;
  /** What the first test leaves for the next: the builds, and which replica ran each. */
  const shared: { builds: Build[]; runnerOf: Map<number, ServerProcess>; replicas: ServerProcess[] } = {
    builds: [],
    runnerOf: new Map(),
    replicas: [],
  };
  beforeAll(async () => {
    database = await createScratchDatabase(baseUrl!);
  });
  afterAll(async () => {
    await cleanup();
    await database?.drop();
  });

  it('runs every build exactly once', { timeout: 240_000 }, async () => {
    const sharedDir = await tempDir('replicas-shared');
    // Steps run as the build user, who may write here.
    await chmod(sharedDir, 0o777);
    const ranFile = join(sharedDir, 'ran.txt');
    const repo = await TestRepo.create({
      '.slipway.yml': [
        'steps:',
        '  - name: record',
        // The workspace lies under the workspace root of the replica that runs the build.
        `    commands: ['echo "$SLIPWAY_BUILD_ID $PWD" >> ${ranFile}', 'sleep 0.2']`,
        '',
      ].join('\n'),
    });
    for (const branch of BRANCHES.slice(1)) repo.git('branch', branch);

    // One at a time: the first start migrates the database and prints the admin token.
    // Replicas share the blob store (logs, artifacts): a shared directory here, S3 in production.
    const blobs = await tempDir('shared-blobs');
    const a = await ServerProcess.start({
      executor: 'local',
      database: database.url,
      globalLimit: LIMIT,
      replicaId: 'replica-a',
      blobs,
    });
    const b = await ServerProcess.start(
      { executor: 'local', database: database.url, globalLimit: LIMIT, replicaId: 'replica-b', blobs },
      a.token,
    );
    const apis = [a.api(), b.api()];
    await apis[0]!.ok('POST', '/projects', {
      slug: 'twin/web',
      repoUrl: repo.url,
      concurrencyPolicy: 'queue',
    });

    const sampler = sampleQueue(apis);
    // Triggers through both replicas at once, so both number builds and both get kicked.
    const triggered = await Promise.all(
      oneTo(BUILDS).map((i) =>
        apis[i % 2]!.ok<Build>('POST', '/projects/twin/web/builds', {
          branch: BRANCHES[i % BRANCHES.length],
        }),
      ),
    );
    const builds = await allFinished(apis[0]!, 'twin/web', BUILDS, 180_000);
    const { maxActive } = await sampler.stop();

    expect(builds.filter((x) => x.status !== 'success').map((x) => `#${x.number} ${x.status}`)).toEqual([]);
    expect(builds.map((x) => x.number).sort((x, y) => x - y)).toEqual(oneTo(BUILDS));
    expect(triggered.map((t) => t.number).sort((x, y) => x - y)).toEqual(oneTo(BUILDS));

    // Exactly once: one line per build in the shared file, each id once.
    const ran = (await readFile(ranFile, 'utf8')).trim().split('\n');
    const ids = ran.map((line) => Number(line.split(' ')[0]));
    expect(ids.slice().sort((x, y) => x - y)).toEqual(builds.map((x) => x.id).sort((x, y) => x - y));
    // Every run happened in a workspace of one of the two replicas. (Which one takes a build
    // is not fixed: the replica that frees a slot usually claims the next build first.)
    const runnerOf = new Map(
      ran.map((line) => {
        const [id, pwd] = line.split(' ');
        return [Number(id), pwd!.startsWith(`${a.options.workspaceRoot}/`) ? a : b] as const;
      }),
    );
    expect(
      ran.every((line) => [a, b].some((r) => line.split(' ')[1]!.startsWith(`${r.options.workspaceRoot}/`))),
    ).toBe(true);
    shared.builds = builds;
    shared.runnerOf = runnerOf;
    shared.replicas = [a, b];

    // One start per build in its log (read through the replica that ran it): the header comes once.
    for (const build of builds) {
      const headers = (await runnerOf.get(build.id)!.api().storedLog(build.id)).filter((l) =>
        /^build #\d+ of /.test(l.text),
      );
      expect(headers.map((l) => l.text)).toEqual([
        expect.stringMatching(new RegExp(`^build #${build.number} of twin/web`)),
      ]);
    }
    // Limits across both replicas: the global limit, and one build per branch at a time.
    expect(maxActive).toBeLessThanOrEqual(LIMIT);
    expect(maxOverlap(builds)).toBeLessThanOrEqual(LIMIT);
    for (const branch of BRANCHES) expect(maxOverlap(builds.filter((x) => x.branch === branch))).toBe(1);
  });

  // Logs are in the shared blob store, so the replica that did not run a build serves it too.
  it("serves every build's log through either replica", { timeout: 60_000 }, async () => {
    expect(shared.builds.length).toBe(BUILDS);
    for (const build of shared.builds.slice(0, 10)) {
      const runner = shared.runnerOf.get(build.id)!;
      const other = shared.replicas.find((r) => r !== runner)!;
      const there = await runner.api().storedLog(build.id);
      const here = await other.api().storedLog(build.id);
      expect(there.length).toBeGreaterThan(0);
      expect(here, `build ${build.id} through the replica that did not run it`).toEqual(there);
    }
  });
});
