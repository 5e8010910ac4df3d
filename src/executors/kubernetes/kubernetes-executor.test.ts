/**
 * What only the kubernetes executor has to get right, against the in-test STAND-IN of the
 * Kubernetes API server whose kubelet runs the pods on Podman (no real cluster here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTestEngine } from '../docker/testing/test-engine.js';
import { RecordingSink } from '../executor.case.js';
import { runStep } from '../lifecycle.js';
import { createKubeApi } from './client/index.js';
import { KubernetesExecutor } from './kubernetes-executor.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const found = await findTestEngine();

describe.skipIf(!found.available)('kubernetes executor (stand-in API server on Podman)', () => {
  const image = found.available ? found.image : '';
  let standIn: StandIn;
  let executor: KubernetesExecutor;

  beforeAll(async () => {
    standIn = await startStandIn({ kubelet: 'podman' });
    const api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
    executor = new KubernetesExecutor({
      api,
      installation: 'executor-test',
      helperImage: image,
      pull: 'Never',
    });
  }, 120_000);

  afterAll(async () => {
    await executor?.close();
    await standIn?.close();
  }, 120_000);

  it(
    'hands a script to the shell as written: the kubelet expands $(NAME) and $$ in args, so every $ is escaped',
    { timeout: 120_000 },
    async () => {
      const h = await executor.prepare({
        buildId: `dollar-${process.pid}`,
        project: 'k8s/dollars',
        branch: 'main',
        image,
        services: [
          {
            name: 'svc',
            image,
            env: { FOO: 'bar' },
            secrets: [],
            commands: ['echo "svc $$" \'$(FOO)\' > /workspace/svc.txt', 'exec sleep 3600'],
          },
        ],
      });
      try {
        const sink = new RecordingSink();
        const exit = await runStep(
          executor,
          h,
          {
            key: 'test/dollars',
            stage: 'test',
            step: 'dollars',
            image,
            commands: [
              'echo "pid=$$"',
              'echo \'$(FOO)\' "$(echo sub)" $HOME',
              'while ! test -s svc.txt; do sleep 0.1; done; cat svc.txt',
            ],
            env: { FOO: 'bar', HOME: '/home/x' },
            secrets: {},
            attempt: 1,
          },
          sink,
          new AbortController().signal,
        );
        expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        const [pid, literal, service] = sink.out();
        expect(pid).toMatch(/^pid=\d+$/);
        expect(literal).toBe('$(FOO) sub /home/x');
        expect(service).toMatch(/^svc \d+ \$\(FOO\)$/);
      } finally {
        await executor.destroy(h);
      }
    },
  );
});
