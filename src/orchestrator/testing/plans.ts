/** Small plans for orchestrator tests on the memory executor. */
import type { BuildContext, PipelinePlan, StagePlan, StepPlan } from '../../pipeline/types.js';

export const ctx: BuildContext = {
  buildId: 'b1',
  buildNumber: 1,
  project: 'acme/web',
  branch: 'main',
  commit: 'abc',
  event: 'push',
  workspace: '/memory/b1',
};

export function step(name: string, commands: string[], extra: Partial<StepPlan> = {}): StepPlan {
  return {
    name,
    commands,
    env: {},
    secrets: [],
    retries: 0,
    allowFailure: false,
    needs: [],
    artifacts: [],
    pos: { line: 1, col: 1 },
    ...extra,
  };
}

export function stage(name: string, steps: StepPlan[], extra: Partial<StagePlan> = {}): StagePlan {
  return { name, steps, approval: false, pos: { line: 1, col: 1 }, ...extra };
}

export function plan(...stages: StagePlan[]): PipelinePlan {
  return { file: '.slipway.yml', env: {}, services: [], stages };
}
