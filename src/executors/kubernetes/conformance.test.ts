/**
 * The executor conformance suite on the kubernetes executor, against the in-test STAND-IN of
 * the Kubernetes API server (no real cluster can run on these machines): the stand-in checks
 * every object against the official schemas and runs the pods for real on Podman, so the
 * steps really run in containers of one pod.
 */
import { describe, it } from 'vitest';
import { SHELL_COMMANDS, executorConformance } from '../executor.case.js';
import { enginePlan, findTestEngine } from '../docker/testing/test-engine.js';
import { createKubeApi } from './client/index.js';
import { KubernetesExecutor } from './kubernetes-executor.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('kubernetes executor conformance (stand-in API server on Podman)', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(plan.reason);
    });
  });
}

describe.skipIf(!found.available)('kubernetes executor against the stand-in API server on Podman', () => {
  let standIn: StandIn | undefined;
  const made: KubernetesExecutor[] = [];
  executorConformance(
    'kubernetes (stand-in API server)',
    { ...SHELL_COMMANDS, mergedStreams: true },
    async () => {
      standIn = await startStandIn({ kubelet: 'podman' });
      const api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
      // A reopened executor is what a restarted server builds: a new instance, a new watch.
      const make = (): KubernetesExecutor => {
        const executor = new KubernetesExecutor({
          api,
          installation: 'conformance',
          helperImage: found.available ? found.image : '',
          pull: 'Never',
          stopGraceSeconds: 1,
          deleteGraceSeconds: 1,
        });
        made.push(executor);
        return executor;
      };
      return {
        create: make,
        reopen: make,
        ...(found.available ? { image: found.image } : {}),
        hostProcesses: false,
        cleanup: async () => {
          await Promise.all(made.map((e) => e.close()));
          await standIn?.close();
        },
      };
    },
  );
});
