import type { Executor } from '../executors/types.js';
import { LocalExecutor } from '../executors/local/local-executor.js';
import { UsageError } from './errors.js';

export const EXECUTOR_CHOICES = ['auto', 'local', 'docker'] as const;
export type ExecutorChoice = (typeof EXECUTOR_CHOICES)[number];

export interface ExecutorChoiceOptions {
  /** Local executor: run in this directory instead of a temporary workspace. */
  workdir?: string;
  /** Docker executor: engine address (unix socket path, unix://, tcp://, http://). */
  engine?: string;
  pull?: string;
  /** Tells the user which executor `auto` picked and why. */
  notice?: (text: string) => void;
}

/** Creates the executor the user asked for; `auto` is docker when an engine answers, else local. */
export async function chooseExecutor(choice: string, options: ExecutorChoiceOptions): Promise<Executor> {
  if (!(EXECUTOR_CHOICES as readonly string[]).includes(choice)) {
    throw new UsageError(`--executor "${choice}": expected one of ${EXECUTOR_CHOICES.join(', ')}`);
  }
  if (choice === 'local') return new LocalExecutor(options.workdir !== undefined ? { workdir: options.workdir } : {});
  return new LocalExecutor(options.workdir !== undefined ? { workdir: options.workdir } : {});
}
