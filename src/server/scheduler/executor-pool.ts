import type { Executor } from '../../executors/types.js';

/** The executors a server can use, by name, and why the others are not available. */
export class ExecutorPool {
  constructor(
    private readonly available: Map<string, Executor>,
    private readonly unavailable: Map<string, string>,
    readonly defaultName: string,
  ) {}

  /** The executor for a project (its own choice, else the server default), or why there is none. */
  pick(projectChoice: string | null): { executor: Executor } | { error: string } {
    const name = projectChoice ?? this.defaultName;
    const executor = this.available.get(name);
    if (executor) return { executor };
    const why = this.unavailable.get(name);
    return {
      error: why
        ? `executor "${name}" is not available on this server: ${why}`
        : `unknown executor "${name}"; this server has ${[...this.available.keys()].join(', ')}`,
    };
  }

  all(): Executor[] {
    return [...this.available.values()];
  }
}

/** Executor build ids of server builds: `slipway run` uses others, so reconciliation leaves those alone. */
export function executorBuildId(buildId: number): string {
  return `s${buildId}`;
}

export function buildIdFromExecutorId(executorId: string): number | undefined {
  const match = /^s(\d+)$/.exec(executorId);
  return match ? Number(match[1]) : undefined;
}
