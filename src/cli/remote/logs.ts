import {
  formatDuration,
  isTerminalStatus,
  type Build,
  type LogLine,
  type Status,
} from '../../contract/index.js';
import { EXIT } from '../errors.js';
import type { BufferedWriter, Style } from '../output.js';
import type { SlipwayClient } from './api-client.js';
import { colourStatus } from './format.js';

/** Selects one step's lines; those are printed without a prefix. */
export interface StepFilter {
  stage: string;
  step: string;
}

/**
 * Prints build log lines the way `slipway run` does: `[stage/step] text`, one stable colour
 * per step (colours only when the style is enabled), server notes dimmed.
 */
export class LogPrinter {
  private readonly prefixOf = new Map<string, string>();

  constructor(
    private readonly out: BufferedWriter,
    private readonly style: Style,
    private readonly only?: StepFilter,
  ) {}

  line(line: LogLine): void {
    if (this.only) {
      if (line.stage === this.only.stage && line.step === this.only.step) this.out.write(`${line.text}\n`);
      return;
    }
    const text = line.stream === 'system' ? this.style.dim(line.text) : line.text;
    this.out.write(`${this.prefix(line)}${text}\n`);
  }

  private prefix(line: LogLine): string {
    const key = stepLabel(line.stage, line.step);
    let prefix = this.prefixOf.get(key);
    if (prefix === undefined) {
      prefix = `${this.style.nth(this.prefixOf.size, `[${key}]`)} `;
      this.prefixOf.set(key, prefix);
    }
    return prefix;
  }
}

/** `stage/step`; a service's own log (step `service:<name>`) as `service/<name>`, as `slipway run` shows it. */
export function stepLabel(stage: string, step: string): string {
  if (step.startsWith('service:')) return `service/${step.slice('service:'.length)}`;
  return stage ? `${stage}/${step}` : step;
}

/** Exit code of a command that waited for a build: 0 success, 130 cancelled, 1 anything else. */
export function exitCodeOf(status: Status): number {
  if (status === 'success') return EXIT.ok;
  if (status === 'cancelled') return EXIT.cancelled;
  return EXIT.buildFailed;
}

/**
 * Prints the lines stored so far, paging with `after`. Stops when the log is complete or,
 * for a build still running, when no more lines are stored yet (that is what `-f` is for).
 */
export async function printStoredLogs(
  client: SlipwayClient,
  buildId: number,
  printer: LogPrinter,
): Promise<void> {
  let after = 0;
  for (;;) {
    const page = await client.logPage(buildId, { after });
    for (const line of page.lines) printer.line(line);
    if (page.complete || page.lines.length === 0 || page.last <= after) return;
    after = page.last;
  }
}

/** Where {@link followBuild} writes: log lines to `out`, notes and the final status to `notes`. */
export interface FollowTarget {
  out: BufferedWriter;
  style: Style;
  notes: (text: string) => void;
  /** Styling of the notes, which usually go to another stream than the log. */
  noteStyle: Style;
  only?: StepFilter;
}

/**
 * How long a follower keeps reconnecting to a server it lost: long enough for a restart or an
 * upgrade (the build goes on meanwhile, and the server re-attaches to it when it is back).
 */
const FOLLOW_GIVE_UP_MS = 120_000;

/**
 * Follows a build's live log to its end and returns the exit code for its final status.
 * Lines are deduplicated by `seq` as a second line of defence behind `Last-Event-ID`, so a
 * resumed stream can never print a line twice. Status changes and the outcome go to `notes`
 * (stderr), keeping stdout the log alone.
 */
export async function followBuild(
  client: SlipwayClient,
  build: Build,
  target: FollowTarget,
): Promise<number> {
  const { out, notes, noteStyle } = target;
  const printer = new LogPrinter(out, target.style, target.only);
  const name = `${build.project} #${build.number}`;
  let lastSeq = 0;
  let status: Build = build;
  const events = client.followLogs(build.id, {
    giveUpAfterMs: FOLLOW_GIVE_UP_MS,
    onDisconnect: () =>
      notes(noteStyle.dim('connection to the server lost; reconnecting (for up to 2 minutes)…')),
    onReconnect: () => notes(noteStyle.dim('reconnected; resuming the log')),
  });
  for await (const event of events) {
    if (event.type === 'line') {
      if (event.line.seq <= lastSeq) continue;
      lastSeq = event.line.seq;
      printer.line(event.line);
    } else if (event.type === 'status') {
      if (event.build.status !== status.status && !isTerminalStatus(event.build.status)) {
        out.flush();
        notes(describeStatusChange(name, event.build, noteStyle));
      }
      status = event.build;
    }
  }
  await out.drain();
  // The stream may end before its last status event reaches us; the build record is the truth.
  if (!isTerminalStatus(status.status)) status = await client.getBuild(build.id);
  const took = status.durationMs !== null ? ` in ${formatDuration(status.durationMs)}` : '';
  const reason = status.reason && status.status !== 'success' ? ` (${status.reason.message})` : '';
  notes(`${name} ${colourStatus(noteStyle, status.status)}${took}${reason}`);
  return exitCodeOf(status.status);
}

function describeStatusChange(name: string, build: Build, style: Style): string {
  if (build.status === 'waiting') {
    return style.yellow(
      `${name} waiting for approval: slipway approve ${build.project} ${build.number} [--reject]`,
    );
  }
  return style.dim(`${name} ${build.status}`);
}
