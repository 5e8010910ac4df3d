import type { ExecutorSelection } from '../../executors/host-guard.js';
import type { Executor } from '../../executors/types.js';

/** The executor of a build and how it was chosen, or why there is none. */
export type ExecutorPick = { executor: Executor; selection: ExecutorSelection } | { error: string };

/** The executors a server can use, by name, and why the others are not available. */
export class ExecutorPool {
  /**
   * @param autoFallback set when the default is `local` only because `--executor auto` found
   *   no container engine: why it found none. Then the default is not a choice of local, and
   *   pipelines that name images do not run on it (see host-guard.ts).
   */
  constructor(
    private readonly available: Map<string, Executor>,
    private readonly unavailable: Map<string, string>,
    readonly defaultName: string,
    private readonly autoFallback?: string,
  ) {}

  /** The executor for a project (its own choice, else the server default), or why there is none. */
  pick(projectChoice: string | null): ExecutorPick {
    const name = projectChoice ?? this.defaultName;
    const executor = this.available.get(name);
    if (executor) {
      const noContainer = this.autoFallback ?? this.unavailable.get('docker');
      return {
        executor,
        selection: {
          executor: name,
          localChosen: name === 'local' && (projectChoice !== null || this.autoFallback === undefined),
          ...(noContainer !== undefined ? { noContainer } : {}),
        },
      };
    }
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

  /** Every executor this server knows, usable or not (with why not), the default first. */
  list(): Array<{ name: string; usable: boolean; isDefault: boolean; detail: string }> {
    const entries = [
      ...[...this.available.keys()].map((name) => ({
        name,
        usable: true,
        isDefault: name === this.defaultName,
        detail:
          name === 'local' && this.autoFallback !== undefined
            ? `host processes; the default only because no container engine answered: ${this.autoFallback}`
            : name === 'local'
              ? 'host processes in a per-build workspace (trusted builds only)'
              : 'one fresh container per step',
      })),
      ...[...this.unavailable.entries()]
        .filter(([name]) => !this.available.has(name))
        .map(([name, why]) => ({ name, usable: false, isDefault: false, detail: why })),
    ];
    return entries.sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
  }
}

/**
 * Executor build ids of server builds: `s<installation>-<build id>`. `slipway run` and other
 * installations sharing the engine use other ids, so reconciliation never touches theirs.
 */
export class ExecutorIds {
  private readonly pattern: RegExp;

  constructor(readonly installation: string) {
    this.pattern = new RegExp(`^s${installation}-(\\d+)$`);
  }

  of(buildId: number): string {
    return `s${this.installation}-${buildId}`;
  }

  /** The build id of one of ours, or undefined for anything else. */
  parse(executorId: string): number | undefined {
    const match = this.pattern.exec(executorId);
    return match ? Number(match[1]) : undefined;
  }
}
