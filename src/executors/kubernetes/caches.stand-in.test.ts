/**
 * Step caches on the kubernetes executor against the STAND-IN API server, whose kubelet runs
 * the build pods on Podman, through the real `CacheService` (blob store in a temp dir, SQLite):
 * a save leaves the pod through a collect container's log, a restore enters the next build's
 * pod through ConfigMaps unpacked by `seed`, within the executor's byte bounds.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import { compilePipeline, type PipelinePlan } from '../../pipeline/index.js';
import { TEST_CONTEXT } from '../../pipeline/testing/context.js';
import { CacheService } from '../../server/caches/service.js';
import { listCaches } from '../../store/caches.js';
import { makeProject } from '../../store/testing/fixtures.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { enginePlan, findTestEngine } from '../docker/testing/test-engine.js';
import { packRestores } from './cache-files.js';
import { createKubeApi } from './client/index.js';
import type { KubeApi } from './kube-api.js';
import { KubernetesExecutor } from './kubernetes-executor.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const found = await findTestEngine();
const engine = enginePlan(found);
if (engine.action === 'fail') {
  describe('step caches on the kubernetes executor (stand-in API server on Podman)', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(engine.reason);
    });
  });
}
const image = found.available ? found.image : '';

function compile(source: string): PipelinePlan {
  const compiled = compilePipeline({ file: 'p.yml', context: TEST_CONTEXT, source });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
  return compiled.plan;
}

const DEPS_STEP = `  - name: deps
    cache: { key: deps-v1, paths: [deps, ~/.tool] }
    commands:
      - if [ -f deps/a/lib.txt ]; then echo "deps from $(cat deps/a/lib.txt)"; else mkdir -p deps/a && echo v1 > deps/a/lib.txt && ln -s a/lib.txt deps/link && echo made; fi
      - test "$(cat deps/link)" = v1
      - if [ -f ~/.tool/t ]; then echo "tool from $(cat ~/.tool/t)"; else mkdir -p ~/.tool && echo t1 > ~/.tool/t; fi
`;

const FAT_STEP = `  - name: fat
    cache: { key: fat-v1, paths: [fat] }
    commands: ["if [ -f fat/r ]; then echo fat from cache; else mkdir fat && head -c 8192 /dev/urandom > fat/r && echo fat made; fi"]
`;

describe.skipIf(!found.available)(
  'step caches on the kubernetes executor (stand-in API server on Podman)',
  () => {
    let standIn: StandIn;
    let api: KubeApi;
    let executor: KubernetesExecutor;
    let t: TestDatabase;
    let dir: string;
    let caches: CacheService;
    let projectId: number;

    beforeAll(async () => {
      standIn = await startStandIn({ kubelet: 'podman' });
      api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
      executor = new KubernetesExecutor({
        api,
        installation: 'caches',
        helperImage: image,
        pull: 'Never',
        stopGraceSeconds: 1,
        deleteGraceSeconds: 1,
        // deps-v1 fits (under 1 kB), fat-v1 (8 kB of random bytes) does not.
        maxCacheRestoreBytes: 4096,
      });
      t = await openTestDatabase('sqlite');
      dir = await mkdtemp(join(tmpdir(), 'kube-cache-'));
      projectId = (await makeProject(t.db, { slug: 'acme/kube-cache' })).id;
      caches = new CacheService({
        db: t.db,
        blobs: new FsBlobStore(join(dir, 'blobs')),
        scratch: join(dir, 'scratch'),
        // Small, so that the sparse 1 GiB file below is refused early (the container stops too).
        options: { maxExpandedBytes: 256 * 1024, maxEntries: 1000 },
      });
    }, 120_000);

    afterAll(async () => {
      await executor?.close();
      await standIn?.close();
      await t?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 120_000);

    async function build(name: string, plan: PipelinePlan, fork = false) {
      const lines: string[] = [];
      const log = (_stage: string, _step: string, text: string) => lines.push(text);
      const hooks = (await caches.forBuild({
        projectId,
        branch: 'main',
        fork,
        plan,
        sourceDir: undefined,
        executor,
        log,
      }))!;
      try {
        const result = await runPipeline(
          plan,
          { ...TEST_CONTEXT, buildId: `${name}-${process.pid}` },
          executor,
          {
            beforeStep: hooks.beforeStep,
            afterStep: hooks.afterStep,
            ...(hooks.caches ? { caches: hooks.caches } : {}),
            observer: { stepLog: (_stage, _step, line) => lines.push(line.text) },
          },
        );
        return { status: result.status, lines };
      } finally {
        await hooks.dispose();
      }
    }

    it('saves workspace and ~/ paths out of one build pod and restores them into the next, within the byte bounds both ways', async () => {
      const first = await build(
        'kube-cache-1',
        compile(`image: ${image}
steps:
${DEPS_STEP}${FAT_STEP}  - name: big
    cache: { key: big-v1, paths: [big] }
    commands: ["mkdir big && dd if=/dev/zero of=big/sparse bs=1 count=0 seek=1073741824 2>/dev/null"]
`),
      );
      expect(first.status, first.lines.join('\n')).toBe('success');
      expect(first.lines).toContain('cache: miss (deps-v1)');
      expect(first.lines).toContain('made');
      expect(first.lines).toContainEqual(
        expect.stringMatching(/^cache: saved deps-v1 \(.+\) for branch main$/),
      );
      expect(first.lines).toContainEqual(
        expect.stringMatching(/^cache: saved fat-v1 \(.+\) for branch main$/),
      );
      // The sparse 1 GiB file: refused at the bound, nothing stored, nothing left in scratch.
      expect(first.lines).toContain('cache: not saved: the cache paths hold more than 262144 bytes');
      expect((await listCaches(t.db, projectId)).map((c) => c.key).sort()).toEqual(['deps-v1', 'fat-v1']);
      expect((await readdir(join(dir, 'scratch'))).filter((f) => f.startsWith('save-'))).toEqual([]);

      // A pull request from a fork: restores only (no copy out to wait for).
      const second = await build(
        'kube-cache-2',
        compile(`image: ${image}\nsteps:\n${DEPS_STEP}${FAT_STEP}`),
        true,
      );
      expect(second.status, second.lines.join('\n')).toBe('success');
      expect(second.lines).toContainEqual(
        expect.stringMatching(/^cache: restored deps-v1 \(.+\) from branch main$/),
      );
      expect(second.lines).toContain('deps from v1');
      expect(second.lines).toContain('tool from t1');
      // What does not fit in what is left of the executor's restore budget: the step runs without it.
      expect(second.lines).toContainEqual(
        expect.stringMatching(
          /^cache: not restored: fat-v1 \(.+\) is more than the kubernetes executor passes into a build \(.+ left of 4\.0 KiB\); the step runs without it$/,
        ),
      );
      expect(second.lines).toContain('fat made');
    }, 240_000);

    it('packs restores within the budget, all of them together, and tells the ones left out', async () => {
      const stage = async (name: string, bytes: number) => {
        const at = join(dir, 'restores', name);
        await mkdir(join(at, 'w'), { recursive: true });
        // Random bytes do not compress: the archive is about as large as the file.
        await writeFile(join(at, 'w', 'f'), randomBytes(bytes));
        return at;
      };
      const dropped: string[] = [];
      const restores = await packRestores(
        [
          { step: 'a/one', dir: await stage('one', 6000), dropped: (why) => dropped.push(`one: ${why}`) },
          { step: 'a/two', dir: await stage('two', 6000), dropped: (why) => dropped.push(`two: ${why}`) },
          {
            step: 'a/three',
            dir: await stage('three', 100),
            dropped: (why) => dropped.push(`three: ${why}`),
          },
        ],
        10_000,
      );
      expect(restores.map((r) => r.step)).toEqual(['a/one', 'a/three']);
      expect(dropped).toEqual([
        expect.stringMatching(
          /^two: it is more than the \d\.\d KiB left of the 9\.8 KiB the kubernetes executor passes into a build pod$/,
        ),
      ]);
    });
  },
);
