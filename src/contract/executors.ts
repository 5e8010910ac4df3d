/**
 * Names of the executors (the backends that run steps). `memory` runs steps in-process for
 * tests and is never offered to projects.
 */
export const EXECUTOR_NAMES = ['local', 'docker', 'kubernetes', 'memory'] as const;
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

/** What a project's `defaultExecutor` may name. */
export const PROJECT_EXECUTORS = ['local', 'docker', 'kubernetes'] as const satisfies readonly ExecutorName[];
export type ProjectExecutor = (typeof PROJECT_EXECUTORS)[number];

export function isExecutorName(value: unknown): value is ExecutorName {
  return (EXECUTOR_NAMES as readonly unknown[]).includes(value);
}
