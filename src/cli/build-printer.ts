import { formatDuration, type FinalStatus } from '../contract/index.js';
import { describeAttempt } from '../orchestrator/step-runner.js';
import type { AttemptInfo, BuildObserver, BuildResult, LogLine, StepResult } from '../orchestrator/types.js';
import type { BufferedWriter, Style } from './output.js';

/**
 * Prints a running build for people: every log line prefixed with `stage/step`, a line when
 * a step starts and ends, and a summary table at the end.
 */
export class BuildPrinter implements BuildObserver {
  private readonly colourOf = new Map<string, number>();
  private readonly prefixOf = new Map<string, string>();

  constructor(
    private readonly out: BufferedWriter,
    private readonly style: Style,
  ) {}

  stepLog(stage: string, step: string, line: LogLine): void {
    this.out.write(`${this.prefix(`${stage}/${step}`)}${line.text}\n`);
  }

  serviceLog(service: string, line: LogLine): void {
    this.out.write(`${this.prefix(`service/${service}`)}${line.text}\n`);
  }

  stepStarted(stage: string, step: string, attempt: number, info: AttemptInfo): void {
    const again = attempt > 1 ? ` (${describeAttempt(attempt, info)})` : '';
    this.out.write(this.style.dim(`--- ${stage}/${step} started${again}`) + '\n');
  }

  /** The pending phase (pulling the image): said once per event, not part of the step's time. */
  stepPending(stage: string, step: string, text: string): void {
    this.out.write(this.style.dim(`--- ${stage}/${step} ${text}`) + '\n');
  }

  stepFinished(stage: string, step: string, result: StepResult): void {
    if (result.attempts === 0) return;
    const note = result.reason ? `: ${result.reason.message}` : '';
    const allowed = result.allowFailure && result.status === 'failure' ? ' (allowed to fail)' : '';
    this.out.write(
      `--- ${stage}/${step} ${this.status(result.status)}${note}${allowed} in ${formatDuration(result.durationMs)}\n`,
    );
  }

  stageWaiting(stage: string): void {
    this.out.write(this.style.yellow(`--- ${stage} waiting for approval`) + '\n');
  }

  /** The summary table: each stage and step with status, duration, exit code; then the total. */
  summary(result: BuildResult): void {
    const rows: string[][] = [['STAGE', 'STEP', 'STATUS', 'DURATION', 'EXIT', 'NOTE']];
    for (const stage of result.stages) {
      for (const step of stage.steps) {
        const notes = [
          step.allowFailure && step.status === 'failure' ? 'allowed to fail' : '',
          step.reason?.message ?? '',
        ];
        if (step.attempts > 1) notes.push(`${step.attempts} attempts`);
        rows.push([
          stage.name,
          step.name,
          step.status,
          step.attempts > 0 ? formatDuration(step.durationMs) : '-',
          step.exitCode === null ? '-' : String(step.exitCode),
          notes.filter(Boolean).join('; '),
        ]);
      }
    }
    const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
    const text = rows
      .map((row, i) =>
        row
          .map((cell, col) => {
            const padded = col === row.length - 1 ? cell : cell.padEnd(widths[col]!);
            if (i === 0) return this.style.bold(padded);
            return col === 2 ? this.colourStatus(cell as FinalStatus, padded) : padded;
          })
          .join('  ')
          .trimEnd(),
      )
      .join('\n');
    this.out.write(
      `\n${text}\n\nBuild ${this.status(result.status)} in ${formatDuration(result.durationMs)}`,
    );
    this.out.write(result.reason && result.status !== 'success' ? ` (${result.reason.message})\n` : '\n');
  }

  private prefix(key: string): string {
    let prefix = this.prefixOf.get(key);
    if (prefix === undefined) {
      const colour = this.colourOf.size;
      this.colourOf.set(key, colour);
      prefix = `${this.style.nth(colour, `[${key}]`)} `;
      this.prefixOf.set(key, prefix);
    }
    return prefix;
  }

  private status(status: FinalStatus): string {
    return this.colourStatus(status, status);
  }

  private colourStatus(status: FinalStatus, text: string): string {
    if (status === 'success') return this.style.green(text);
    if (status === 'failure' || status === 'error') return this.style.red(text);
    if (status === 'cancelled') return this.style.yellow(text);
    return this.style.dim(text);
  }
}
