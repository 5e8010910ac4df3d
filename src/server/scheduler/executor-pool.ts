import type { ExecutorSelection } from '../../executors/host-guard.js';
import type { Executor } from '../../executors/types.js';

/** The executor of a build and how it was chosen, or why there is none. */
export type ExecutorPick = { executor: Executor; selection: ExecutorSelection } | { error: string };

/** The executors a server can use, by name, and why the others are not available. */
export class ExecutorPool {
  /**
   * The server never falls back to `local`: it is in `available` only when the operator chose
   * it (`slipway server --executor local`), so a build that runs on it always runs there on
   * purpose. Without a container engine, `--executor auto` leaves `docker` the default and
   * unavailable, and builds end `error` with why.
   *
   * @param details what each available executor is, for `GET /executors` (e.g. the user local
   *   steps run as); a generic line when missing.
   */
  constructor(
    private readonly available: Map<string, Executor>,
    private readonly unavailable: Map<string, string>,
    readonly defaultName: string,
    private readonly details: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** The executor for a project (its own choice, else the server default), or why there is none. */
  pick(projectChoice: string | null): ExecutorPick {
    const name = projectChoice ?? this.defaultName;
    const executor = this.available.get(name);
    if (executor) {
      const noContainer = this.unavailable.get('docker');
      return {
        executor,
        selection: {
          executor: name,
          localChosen: name === 'local',
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
          this.details.get(name) ??
          (name === 'local' ? 'host processes in a per-build workspace' : 'one fresh container per step'),
      })),
      ...[...this.unavailable.entries()]
        .filter(([name]) => !this.available.has(name))
        .map(([name, why]) => ({ name, usable: false, isDefault: name === this.defaultName, detail: why })),
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
