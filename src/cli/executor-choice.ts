import { LocalExecutor } from '../executors/local/local-executor.js';
import type { Executor } from '../executors/types.js';
import { UsageError } from './errors.js';

// dockerode and its dependencies take longer to load than a whole local build: load them only
// when a container engine is wanted.
const docker = () => import('../executors/docker/index.js');

const PULL_POLICIES = ['missing', 'always', 'never'] as const;
type PullPolicy = (typeof PULL_POLICIES)[number];

export const EXECUTOR_CHOICES = ['auto', 'local', 'docker'] as const;
export type ExecutorChoice = (typeof EXECUTOR_CHOICES)[number];

export interface ExecutorChoiceOptions {
  /** Local executor: run in this directory instead of a temporary workspace. */
  workdir?: string;
  /** Docker executor: engine address (unix socket path, unix://, tcp://, http://). */
  engine?: string;
  pull?: string;
  /** `auto` picks local for a pipeline that names no image: it could not run in containers. */
  pipelineHasImages?: boolean;
  /** Tells the user which executor `auto` picked and why. */
  notice?: (text: string) => void;
}

/**
 * Creates the executor the user asked for. `auto` is docker when an engine answers (and the
 * pipeline names images), else local with a one-line notice saying why.
 */
export async function chooseExecutor(choice: string, options: ExecutorChoiceOptions): Promise<Executor> {
  if (!(EXECUTOR_CHOICES as readonly string[]).includes(choice)) {
    throw new UsageError(`--executor "${choice}": expected one of ${EXECUTOR_CHOICES.join(', ')}`);
  }
  const pull = parsePull(options.pull);
  const local = () => new LocalExecutor(options.workdir !== undefined ? { workdir: options.workdir } : {});
  if (choice === 'local') return local();
  if (choice === 'docker') {
    const { createDockerExecutor } = await docker();
    return createDockerExecutor({
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
      ...(pull ? { pull } : {}),
    });
  }
  if (options.pipelineHasImages === false) {
    options.notice?.(
      'slipway: the pipeline names no image; using the local executor (steps run as host processes)',
    );
    return local();
  }
  const { createDockerExecutor, discoverEngine } = await docker();
  try {
    const engine = await discoverEngine({
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
      pingTimeoutMs: 1000,
    });
    return await createDockerExecutor({ engine: engine.address, ...(pull ? { pull } : {}) });
  } catch {
    options.notice?.(
      'slipway: no container engine answered (see `slipway doctor`); using the local executor (steps run as host processes)',
    );
    return local();
  }
}

function parsePull(value: string | undefined): PullPolicy | undefined {
  if (value === undefined) return undefined;
  if ((PULL_POLICIES as readonly string[]).includes(value)) return value as PullPolicy;
  throw new UsageError(`--pull "${value}": expected one of ${PULL_POLICIES.join(', ')}`);
}
