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
 * volume, the second restores it into a fresh volume before its step; `~/` paths are said to
 * be skipped (the docker executor keeps no HOME between steps).
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
steps:
  - name: deps
    cache: { key: deps-v1, paths: [deps, ~/.tool] }
    commands:
      - if [ -f deps/a/lib.txt ]; then echo "deps from $(cat deps/a/lib.txt)"; else mkdir -p deps/a && echo v1 > deps/a/lib.txt && ln -s a/lib.txt deps/link && echo made; fi
      - test "$(cat deps/link)" = v1
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
      const result = await runPipeline(
        plan,
        { ...TEST_CONTEXT, buildId: `docker-cache-${n}-${process.pid}` },
        executor,
        {
          beforeStep: hooks.beforeStep,
          afterStep: hooks.afterStep,
          observer: { stepLog: (_stage, _step, line) => lines.push(line.text) },
        },
      );
      return { status: result.status, lines };
    };
    const first = await build(1);
    expect(first.status, first.lines.join('\n')).toBe('success');
    expect(first.lines).toContain('cache: miss (deps-v1)');
    expect(first.lines).toContain('made');
    expect(first.lines).toContainEqual(
      expect.stringMatching(/^cache: saved deps-v1 \(.+\) for branch main$/),
    );
    expect(first.lines).toContainEqual(
      expect.stringMatching(/^cache: ~\/\.tool skipped: the docker executor keeps no HOME/),
    );

    const second = await build(2);
    expect(second.status, second.lines.join('\n')).toBe('success');
    expect(second.lines).toContainEqual(
      expect.stringMatching(/^cache: restored deps-v1 \(.+\) from branch main$/),
    );
    expect(second.lines).toContain('deps from v1');
  }, 180_000);

  it('does not copy out more than a restore would take (a sparse 1 GiB file in the volume)', async () => {
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
    // The step succeeded; its cache was not saved, and nothing was stored.
    expect(result.status, lines.join('\n')).toBe('success');
    expect(lines).toContainEqual(
      expect.stringMatching(/^cache: not saved: the cache paths hold more than 1048576 bytes$/),
    );
    expect(await listCaches(t.db, project.id)).toEqual([]);
  }, 180_000);
});
