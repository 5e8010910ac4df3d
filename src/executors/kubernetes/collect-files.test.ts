/**
 * `collectFiles` of the kubernetes executor against the STAND-IN API server, whose kubelet runs
 * the build pod on Podman: the shared conformance suite, and what the collect container reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFilesConformance } from '../collect-files.case.js';
import { RecordingSink } from '../executor.case.js';
import { enginePlan, findTestEngine } from '../docker/testing/test-engine.js';
import { runStep } from '../lifecycle.js';
import type { BuildHandle } from '../types.js';
import { createKubeApi } from './client/index.js';
import type { KubeApi } from './kube-api.js';
import { KubernetesExecutor } from './kubernetes-executor.js';
import { podName } from './manifests/index.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('kubernetes collectFiles (stand-in API server on Podman)', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(plan.reason);
    });
  });
}
const image = found.available ? found.image : '';

/** One stand-in and one executor for the whole file. */
let shared: Promise<{ standIn: StandIn; api: KubeApi; executor: KubernetesExecutor }> | undefined;
function target(): Promise<{ standIn: StandIn; api: KubeApi; executor: KubernetesExecutor }> {
  shared ??= (async () => {
    const standIn = await startStandIn({ kubelet: 'podman' });
    const api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
    const executor = new KubernetesExecutor({
      api,
      installation: 'collect',
      helperImage: image,
      pull: 'Never',
      stopGraceSeconds: 1,
      deleteGraceSeconds: 1,
    });
    return { standIn, api, executor };
  })();
  return shared;
}

describe.skipIf(!found.available)('kubernetes collectFiles on the stand-in API server on Podman', () => {
  afterAll(async () => {
    if (!shared) return;
    const { standIn, executor } = await shared;
    await executor.close();
    await standIn.close();
  }, 120_000);

  collectFilesConformance('kubernetes (stand-in API server on Podman)', async () => ({
    executor: (await target()).executor,
    image,
  }));

  describe('what the collect container reads', { timeout: 120_000 }, () => {
    let handle: BuildHandle | undefined;
    const buildId = `collect-only-${process.pid.toString(36)}${Date.now().toString(36)}`;

    beforeAll(async () => {
      const { executor } = await target();
      handle = await executor.prepare({
        buildId,
        project: 'collect/only',
        branch: 'main',
        image,
        services: [],
      });
      const sink = new RecordingSink();
      const exit = await runStep(
        executor,
        handle,
        {
          key: 'build/make',
          stage: 'build',
          step: 'make',
          image,
          commands: [
            'mkdir -p dist/js other',
            "printf 'a' > dist/a.txt",
            "printf 'm' > dist/js/m.js",
            "printf 'o' > other/o.txt",
            "printf 'r' > root.txt",
          ],
          env: {},
          secrets: {},
          attempt: 1,
        },
        sink,
        new AbortController().signal,
      );
      expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 0 });
    }, 600_000);

    afterAll(async () => {
      if (handle) await (await target()).executor.destroy(handle);
    }, 120_000);

    it('reads only dist for dist/** (the collect container tars just that prefix)', async () => {
      const { api, executor } = await target();
      const paths: string[] = [];
      for await (const entry of executor.collectFiles(handle!, ['dist/**'])) {
        expect(entry.kind).toBe('file');
        paths.push(entry.path);
      }
      expect(paths.sort()).toEqual(['dist/a.txt', 'dist/js/m.js']);
      const pod = await api.getPod(podName(buildId));
      const collects = (pod?.spec?.ephemeralContainers ?? []).filter((c) => c.name.startsWith('collect-'));
      expect(collects).toHaveLength(1);
      const command = collects[0]!.command ?? [];
      // ['/bin/sh', '-c', SCRIPT, '$0', recurse, ...paths]
      expect(command.slice(4)).toEqual(['1', 'dist']);
      expect(collects[0]!.volumeMounts).toContainEqual({
        name: 'workspace',
        mountPath: '/workspace',
        readOnly: true,
      });
    });
  });
});
