import type { ExecutorSelection } from '../executors/host-guard.js';
import type { Executor } from '../executors/types.js';
import { UsageError } from './errors.js';
import { kubernetesExecutorFrom, type KubernetesCliOptions } from './kubernetes-options.js';

// dockerode and its dependencies take longer to load than a whole local build: load them only
// when a container engine is wanted.
const docker = () => import('../executors/docker/index.js');

const PULL_POLICIES = ['missing', 'always', 'never'] as const;
type PullPolicy = (typeof PULL_POLICIES)[number];

export const EXECUTOR_CHOICES = ['auto', 'local', 'docker', 'kubernetes'] as const;
export type ExecutorChoice = (typeof EXECUTOR_CHOICES)[number];

export interface ExecutorChoiceOptions {
  /** Local executor: run in this directory instead of a temporary workspace. */
  workdir?: string;
  /** Docker executor: engine address (unix socket path, unix://, tcp://, http://). */
  engine?: string;
  pull?: string;
  /** Docker executor: bound on the engine's answers (`--engine-timeout`). */
  engineTimeoutMs?: number;
  /** Kubernetes executor: cluster, namespace and build pod settings. */
  kubernetes?: KubernetesCliOptions;
  /** `auto` picks local for a pipeline that names no image: it could not run in containers. */
  pipelineHasImages?: boolean;
  /** Tells the user which executor `auto` picked and why. */
  notice?: (text: string) => void;
}

/** The executor to run with, and how it was chosen (for {@link refuseHostRun}). */
export interface ChosenExecutor {
  executor: Executor;
  selection: ExecutorSelection;
}

/**
 * Creates the executor the user asked for. `auto` is docker when an engine answers (and the
 * pipeline names images), else local: with a one-line notice saying why for a pipeline that
 * names no image; for one that does, the selection carries why there is no engine and the
 * caller refuses to run it (see {@link refuseHostRun}).
 */
export async function chooseExecutor(
  choice: string,
  options: ExecutorChoiceOptions,
): Promise<ChosenExecutor> {
  if (!(EXECUTOR_CHOICES as readonly string[]).includes(choice)) {
    throw new UsageError(`--executor "${choice}": expected one of ${EXECUTOR_CHOICES.join(', ')}`);
  }
  const pull = parsePull(options.pull);
  // Imported here, not at the top: main.ts takes EXECUTOR_CHOICES from this module for every command.
  const { LocalExecutor } = await import('../executors/local/local-executor.js');
  const local = (localChosen: boolean, noContainer?: string): ChosenExecutor => ({
    executor: new LocalExecutor(options.workdir !== undefined ? { workdir: options.workdir } : {}),
    selection: { executor: 'local', localChosen, ...(noContainer !== undefined ? { noContainer } : {}) },
  });
  if (choice === 'local') return local(true);
  if (choice === 'kubernetes') {
    const executor = await kubernetesExecutorFrom({
      ...options.kubernetes,
      ...(options.pull !== undefined ? { pull: options.pull } : {}),
    });
    return { executor, selection: { executor: 'kubernetes', localChosen: false } };
  }
  const dockerOptions = {
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
    ...(pull ? { pull } : {}),
    ...(options.engineTimeoutMs !== undefined ? { engineTimeoutMs: options.engineTimeoutMs } : {}),
  };
  const dockerChosen = (executor: Executor): ChosenExecutor => ({
    executor,
    selection: { executor: 'docker', localChosen: false },
  });
  if (choice === 'docker') {
    const { createDockerExecutor } = await docker();
    return dockerChosen(await createDockerExecutor(dockerOptions));
  }
  if (options.pipelineHasImages === false) {
    options.notice?.(
      'slipway: the pipeline names no image; using the local executor (steps run as host processes)',
    );
    return local(false);
  }
  const { createDockerExecutor, EngineUnavailableError } = await docker();
  try {
    return dockerChosen(await createDockerExecutor(dockerOptions));
  } catch (error) {
    const why =
      error instanceof EngineUnavailableError
        ? error.summary
        : error instanceof Error
          ? error.message
          : String(error);
    // A pipeline with images is refused by the caller with the reason; no notice needed.
    if (options.pipelineHasImages !== true) {
      options.notice?.(
        `slipway: no container engine answered (${why}); using the local executor (steps run as host processes)`,
      );
    }
    return local(false, why);
  }
}

function parsePull(value: string | undefined): PullPolicy | undefined {
  if (value === undefined) return undefined;
  if ((PULL_POLICIES as readonly string[]).includes(value)) return value as PullPolicy;
  throw new UsageError(`--pull "${value}": expected one of ${PULL_POLICIES.join(', ')}`);
}
