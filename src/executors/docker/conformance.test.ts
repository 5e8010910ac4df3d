import { describe, it } from 'vitest';
import { SHELL_COMMANDS, executorConformance } from '../executor.case.js';
import { DockerExecutor } from './docker-executor.js';
import { enginePlan, findTestEngine } from './testing/test-engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('docker executor conformance', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available ? found : undefined;

describe.skipIf(!live)('docker executor on a real engine', () => {
  // A reopened executor is what a restarted server builds: a new instance over the same engine.
  const make = (): DockerExecutor =>
    new DockerExecutor({ client: live!.client, engine: live!.engine, stopGraceMs: 500 });
  executorConformance('docker', SHELL_COMMANDS, () =>
    Promise.resolve({ create: make, reopen: make, image: live!.image, hostProcesses: false }),
  );
});
