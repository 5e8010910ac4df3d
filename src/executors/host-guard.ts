/**
 * Pipelines that name images never run on the host by surprise. A pipeline that names an image
 * was written for containers: run as host processes its steps get the host's tools, files and
 * root instead of the image's. So a build that names one and would run on the local executor
 * runs there only when local was chosen by name; when `auto` fell back to local because no
 * container engine answered, the build ends `error` instead, saying so. Only `slipway run` (the
 * user's own machine and user) falls back so: the server never does, and has the local
 * executor only when started with `--executor local` (see executor-pool.ts).
 */
import type { BuildResult, Reason } from '../orchestrator/types.js';
import type { PipelinePlan } from '../pipeline/types.js';

/** How the executor of a build was chosen. */
export interface ExecutorSelection {
  /** The name of the executor that would run the build. */
  executor: string;
  /**
   * Local was asked for by name: the project's executor setting, `slipway server --executor
   * local`, `slipway run --executor local`. False when `auto` fell back to it.
   */
  localChosen: boolean;
  /** Why no container executor is available (from engine discovery), when none is. */
  noContainer?: string;
}

/**
 * Every image a plan names, once each, in order: the top-level image (or `defaultImage`, the
 * project's, when the file names none), then steps' and services' images.
 */
export function pipelineImages(
  plan: Pick<PipelinePlan, 'image' | 'services' | 'stages'>,
  defaultImage?: string | null,
): string[] {
  const images = new Set<string>();
  const top = plan.image ?? defaultImage ?? undefined;
  if (top !== undefined && top !== '') images.add(top);
  for (const stage of plan.stages) for (const step of stage.steps) if (step.image) images.add(step.image);
  for (const service of plan.services) if (service.image) images.add(service.image);
  return [...images];
}

/**
 * Why the build must not run, or undefined when it may: it names images, would run on the
 * local executor, and local was not chosen by name. `onPurpose` tells how to run it on the
 * host anyway (it differs between the server and `slipway run`).
 */
export function refuseHostRun(
  images: readonly string[],
  selection: ExecutorSelection,
  onPurpose: string,
): Reason | undefined {
  if (images.length === 0 || selection.executor !== 'local' || selection.localChosen) return undefined;
  const named = images.length === 1 ? `image ${images[0]}` : `images ${images.join(', ')}`;
  const why = selection.noContainer !== undefined ? ` (${selection.noContainer})` : '';
  return {
    code: 'executor',
    message:
      `the pipeline names ${named}, but no container engine is available${why}; ` +
      `it was not run as host processes. To run it on the host on purpose, ${onPurpose}`,
  };
}

/**
 * Why a container executor cannot run the plan, or undefined when it can: steps or services
 * without an image (none of their own, no top-level one, no project default). Said before
 * any step runs, with the ways to fix it, instead of a step-by-step "has no image".
 */
export function refuseImageless(
  plan: Pick<PipelinePlan, 'image' | 'services' | 'stages'>,
  executor: string,
  fixes: string,
): Reason | undefined {
  if (executor === 'local' || executor === 'memory' || plan.image) return undefined;
  const steps = plan.stages.flatMap((stage) =>
    stage.steps.filter((step) => !step.image).map((step) => `${stage.name}/${step.name}`),
  );
  const services = plan.services.filter((s) => !s.image).map((s) => `service ${s.name}`);
  const missing = [...steps, ...services];
  if (missing.length === 0) return undefined;
  const shown = missing.length > 5 ? [...missing.slice(0, 5), `${missing.length - 5} more`] : missing;
  return {
    code: 'executor',
    message:
      `the ${executor} executor runs every step in a container, but the pipeline names no image ` +
      `for ${shown.join(', ')}; ${fixes}`,
  };
}

/** The result of a build that did not start: `error` with the reason, every step `skipped`. */
export function notRunResult(plan: Pick<PipelinePlan, 'stages'>, reason: Reason): BuildResult {
  return {
    status: 'error',
    durationMs: 0,
    reason,
    stages: plan.stages.map((stage) => ({
      name: stage.name,
      status: 'skipped',
      durationMs: 0,
      steps: stage.steps.map((step) => ({
        name: step.name,
        status: 'skipped',
        exitCode: null,
        durationMs: 0,
        attempts: 0,
        allowFailure: step.allowFailure,
      })),
    })),
  };
}
