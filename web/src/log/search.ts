import { stripAnsi } from './ansi';
import type { LogView } from './buffer';

/** Is this a line "Jump to first error" stops at: stderr, or words of failure. */
export function isErrorLine(stream: string, text: string): boolean {
  return stream === 'stderr' || /error|fail/i.test(stripAnsi(text));
}

/**
 * The first row of `view` to show for "First error", or -1. `culprits` are the steps that
 * failed the build (`stage/step`, in plan order; allowed failures are not among them): the
 * first error line of the first of them that has lines in this view, else its last line
 * (where the server says how it ended). Without culprits, or none in view, the first error
 * line of the whole view.
 */
export function firstErrorRow(view: LogView, culprits: readonly string[] = []): number {
  for (const key of culprits) {
    const index = view.buffer.stepIndex(key);
    if (index === undefined || (view.step !== null && view.step !== index)) continue;
    let last = -1;
    for (let row = 0; row < view.count; row++) {
      const line = view.line(row);
      if (line.step !== index) continue;
      if (isErrorLine(line.stream, line.text)) return row;
      last = row;
    }
    if (last >= 0) return last;
  }
  for (let row = 0; row < view.count; row++) {
    const line = view.line(row);
    if (isErrorLine(line.stream, line.text)) return row;
  }
  return -1;
}

/**
 * The rows of a view whose visible text contains `needle` (case-insensitive). Incremental:
 * while the log grows, each `update()` scans only the lines that arrived since the last one.
 */
export class LogSearch {
  private readonly found: number[] = [];
  private scanned = 0;

  constructor(
    private readonly view: LogView,
    /** Already lower-cased; empty finds nothing. */
    readonly needle: string,
  ) {}

  update(): readonly number[] {
    if (this.needle === '') return this.found;
    const count = this.view.count;
    for (let row = this.scanned; row < count; row++) {
      if (stripAnsi(this.view.line(row).text).toLowerCase().includes(this.needle)) this.found.push(row);
    }
    this.scanned = count;
    return this.found;
  }
}
