import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import { DockerExecutor } from '../../executors/docker/docker-executor.js';
import { enginePlan, findTestEngine } from '../../executors/docker/testing/test-engine.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import { compilePipeline, type PipelinePlan } from '../../pipeline/index.js';
import { TEST_CONTEXT } from '../../pipeline/testing/context.js';
import { listCaches } from '../../store/caches.js';
import { makeProject } from '../../store/testing/fixtures.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { CacheService } from './service.js';

const found = await findTestEngine();
const engine = enginePlan(found);
if (engine.action === 'fail') {
  describe('step caches on the docker executor', () => {
    it('has a container engine to test against', () => {
      throw new Error(engine.reason);
    });
  });
}
const live = found.available ? found : undefined;

/**
 * Step caches on a real engine (Podman): the first build saves the workspace's `deps` from the
 * volume and `~/.tool` from the step's HOME (through the build's caches volume), the second
 * restores both into fresh volumes before its step; a step whose HOME cannot be written runs
 * on with a line in its log.
 */
describe.skipIf(!live)('step caches on the docker executor', () => {
  let t: TestDatabase;
  let dir: string;
  let plan: PipelinePlan;
  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dir = await mkdtemp(join(tmpdir(), 'docker-cache-'));
    const compiled = compilePipeline({
      file: 'p.yml',
      context: TEST_CONTEXT,
      source: `image: ${live!.image}
stages:
  - name: a
    steps:
      - name: deps
        cache: { key: deps-v1, paths: [deps, ~/.tool] }
        commands:
          - if [ -f deps/a/lib.txt ]; then echo "deps from $(cat deps/a/lib.txt)"; else mkdir -p deps/a && echo v1 > deps/a/lib.txt && ln -s a/lib.txt deps/link && echo made; fi
          - test "$(cat deps/link)" = v1
          - if [ -f ~/.tool/t.txt ]; then echo "tool from $(cat ~/.tool/t.txt) in $HOME"; else mkdir -p ~/.tool/sub && echo t1 > ~/.tool/t.txt; fi
  - name: b
    steps:
      - name: readonly-home
        env: { HOME: /proc/nohome }
        cache: { key: ro-v1, restore_keys: [deps-], paths: [~/.tool] }
        commands: [echo ran without a HOME]
`,
    });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
    plan = compiled.plan;
  });
  afterAll(async () => {
    await t?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('saves from the volume and restores into the next build', async () => {
    const project = await makeProject(t.db, { slug: 'acme/docker-cache' });
    const caches = new CacheService({
      db: t.db,
      blobs: new FsBlobStore(join(dir, 'blobs')),
      scratch: join(dir, 'scratch'),
    });
    const executor = new DockerExecutor({ client: live!.client, engine: live!.engine, stopGraceMs: 500 });
    const build = async (n: number) => {
      const lines: string[] = [];
      const buildId = `docker-cache-${n}-${process.pid}`;
      const volumes = async () =>
        (await executor.listResources())
          .filter((r) => r.buildId === buildId && r.kind === 'volume')
          .map((r) => r.id.replace(/^.*-/, ''))
          .sort();
      const log = (_stage: string, _step: string, text: string) => lines.push(text);
      const hooks = (await caches.forBuild({
        projectId: project.id,
        branch: 'main',
        fork: false,
        plan,
        sourceDir: undefined,
        executor,
        log,
      }))!;
      let during: string[] = [];
      const result = await runPipeline(plan, { ...TEST_CONTEXT, buildId }, executor, {
        beforeStep: hooks.beforeStep,
        afterStep: async (...args) => {
          during = await volumes();
          return hooks.afterStep(...args);
        },
        observer: { stepLog: (_stage, _step, line) => lines.push(line.text) },
      });
      // The caches volume was there while the build ran, and went with the build.
      expect(during).toEqual(['caches', 'workspace']);
      expect(await volumes()).toEqual([]);
      return { status: result.status, lines };
    };
    const first = await build(1);
    expect(first.status, first.lines.join('\n')).toBe('success');
    expect(first.lines).toContain('cache: miss (deps-v1)');
    expect(first.lines).toContain('made');
    expect(first.lines).toContainEqual(
      expect.stringMatching(/^cache: saved deps-v1 \(.+\) for branch main$/),
    );
    expect(first.lines.filter((l) => l.includes('skipped'))).toEqual([]);
    // A HOME the step cannot write: the restore is left out with a line, the step runs on.
    expect(first.lines).toContainEqual(
      expect.stringMatching(/^cache: restored deps-v1 \(restore key\) \(.+\) from branch main$/),
    );
    expect(first.lines).toContain(
      'slipway: cache: the restored ~/ paths could not be copied into /proc/nohome',
    );
    expect(first.lines).toContain('ran without a HOME');
    expect(first.lines).toContain('cache: not saved: none of ~/.tool exists');

    const second = await build(2);
    expect(second.status, second.lines.join('\n')).toBe('success');
    expect(second.lines).toContainEqual(
      expect.stringMatching(/^cache: restored deps-v1 \(.+\) from branch main$/),
    );
    expect(second.lines).toContain('deps from v1');
    expect(second.lines).toContainEqual(expect.stringMatching(/^tool from t1 in \/.+/));
    expect(second.lines.filter((l) => l.includes('skipped'))).toEqual([]);
  }, 180_000);

  it('does not copy out more than a restore would take (sparse files in the volume, in HOME)', async () => {
    const project = await makeProject(t.db, { slug: 'acme/docker-cache-big' });
    const blobs = new FsBlobStore(join(dir, 'blobs-big'));
    const caches = new CacheService({
      db: t.db,
      blobs,
      scratch: join(dir, 'scratch-big'),
      options: { maxExpandedBytes: 1024 * 1024 },
    });
    const compiled = compilePipeline({
      file: 'p.yml',
      context: TEST_CONTEXT,
      source: `image: ${live!.image}
steps:
  - name: deps
    cache: { key: big-v1, paths: [deps] }
    commands: ["mkdir deps && dd if=/dev/zero of=deps/big bs=1 count=0 seek=1073741824 2>/dev/null"]
  - name: home
    cache: { key: big-home-v1, paths: [~/.npm] }
    commands: ["mkdir -p ~/.npm && dd if=/dev/zero of=$HOME/.npm/big bs=1 count=0 seek=2097152 2>/dev/null"]
`,
    });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
    const executor = new DockerExecutor({ client: live!.client, engine: live!.engine, stopGraceMs: 500 });
    const lines: string[] = [];
    const hooks = (await caches.forBuild({
      projectId: project.id,
      branch: 'main',
      fork: false,
      plan: compiled.plan,
      sourceDir: undefined,
      executor,
      log: (_stage, _step, text) => lines.push(text),
    }))!;
    const result = await runPipeline(
      compiled.plan,
      { ...TEST_CONTEXT, buildId: `docker-cache-big-${process.pid}` },
      executor,
      {
        beforeStep: hooks.beforeStep,
        afterStep: hooks.afterStep,
        observer: { stepLog: (_stage, _step, line) => lines.push(line.text) },
      },
    );
    // The steps succeeded; their caches were not saved (the one of HOME neither: the busybox
    // image's cp made the 2 MiB real in the caches volume), and nothing was stored.
    expect(result.status, lines.join('\n')).toBe('success');
    expect(
      lines.filter((l) => /^cache: not saved: the cache paths hold more than 1048576 bytes$/.test(l)),
    ).toHaveLength(2);
    expect(await listCaches(t.db, project.id)).toEqual([]);
  }, 180_000);
});
