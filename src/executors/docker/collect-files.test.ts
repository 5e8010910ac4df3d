import { describe, it } from 'vitest';
import { collectFilesConformance } from '../collect-files.case.js';
import { DockerExecutor } from './docker-executor.js';
import { enginePlan, findTestEngine } from './testing/test-engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('docker collectFiles', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available ? found : undefined;

describe.skipIf(!live)('docker executor on a real engine', () => {
  collectFilesConformance('docker', () =>
    Promise.resolve({
      executor: new DockerExecutor({ client: live!.client, engine: live!.engine, stopGraceMs: 500 }),
      image: live!.image,
    }),
  );
});
