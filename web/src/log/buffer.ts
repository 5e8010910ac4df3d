import type { LogLine } from '../api/types';

/** One stored line, compact: 100,000 of them are kept in memory for a big log. */
export interface Line {
  seq: number;
  /** Index into {@link LogBuffer.steps}. */
  step: number;
  stream: LogLine['stream'];
  /** Line number within its step (1-based). */
  n: number;
  text: string;
}

/** `stage/step`, the key of a step's log (also what `?step=` holds). */
export function stepKey(stage: string, step: string): string {
  return `${stage}/${step}`;
}

/** A step key for people: the server's own lines (`/slipway`, no stage) lose the slash. */
export function stepLabel(key: string): string {
  return key.startsWith('/') ? key.slice(1) : key;
}

export function splitStepKey(key: string): { stage: string; step: string } {
  const slash = key.indexOf('/');
  return { stage: key.slice(0, slash), step: key.slice(slash + 1) };
}

/**
 * Of the main thread's time while lines pour in, at most this share goes to drawing them (the
 * render, then the browser's style, layout and paint). The rest reads the stream.
 */
const DRAW_SHARE = 0.25;
/** However slow drawing is, the newest lines show at least this often. */
const MAX_DRAW_GAP_MS = 1000;

/**
 * All lines of a build's log in `seq` order, indexed by step. Adding is cheap (lines arrive
 * one SSE event at a time); listeners hear about changes at most once per animation frame,
 * so a fast stream costs one render per frame, not one per line. When a frame costs more than
 * the lines do (a slow or busy machine), frames are spaced out so that drawing takes at most
 * {@link DRAW_SHARE} of the time: otherwise a flood of lines is drawn more than it is read, and
 * the view falls further and further behind the live log.
 */
export class LogBuffer {
  readonly lines: Line[] = [];
  /** Step keys in order of first appearance. */
  readonly steps: string[] = [];
  /** For each step (same index as `steps`), the indexes of its lines in `lines`. */
  readonly byStep: number[][] = [];
  private readonly stepIds = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private frame: number | null = null;
  /** `performance.now()` before which the next frame waits (see {@link DRAW_SHARE}). */
  private nextDraw = 0;
  /** Bumped on every change; what React compares. */
  version = 0;
  lastSeq = 0;
  /** The build is over and every line is here. */
  complete = false;

  add(batch: readonly LogLine[]): void {
    let added = false;
    for (const line of batch) {
      if (line.seq <= this.lastSeq) continue; // a resumed stream may repeat what a page gave
      const key = stepKey(line.stage, line.step);
      let step = this.stepIds.get(key);
      if (step === undefined) {
        step = this.steps.length;
        this.stepIds.set(key, step);
        this.steps.push(key);
        this.byStep.push([]);
      }
      this.byStep[step]!.push(this.lines.length);
      this.lines.push({ seq: line.seq, step, stream: line.stream, n: line.n, text: line.text });
      this.lastSeq = line.seq;
      added = true;
    }
    if (added) this.changed();
  }

  finish(): void {
    if (this.complete) return;
    this.complete = true;
    this.changed();
  }

  stepIndex(key: string): number | undefined {
    return this.stepIds.get(key);
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    if (this.frame !== null) return;
    const flush = () => {
      this.frame = null;
      this.version++;
      for (const listener of this.listeners) listener();
    };
    // A hidden tab gets no frames; a timer keeps the version moving for when it comes back.
    const hidden = () => typeof document !== 'undefined' && document.visibilityState === 'hidden';
    if (hidden()) {
      this.frame = window.setTimeout(flush, 250);
      return;
    }
    const draw = () => {
      const start = performance.now();
      flush();
      // The render runs in this frame's callbacks, style, layout and paint after them: the
      // next task starts once all of that is done.
      window.setTimeout(() => {
        const cost = performance.now() - start;
        this.nextDraw = performance.now() + Math.min(MAX_DRAW_GAP_MS, cost * (1 / DRAW_SHARE - 1));
      }, 0);
    };
    const wait = this.nextDraw - performance.now();
    this.frame =
      wait > 0
        ? window.setTimeout(() => {
            if (hidden()) flush();
            else this.frame = requestAnimationFrame(draw);
          }, wait)
        : requestAnimationFrame(draw);
  }
}

/** What the viewer shows: all lines, or one step's. Row `i` maps to a line of the buffer. */
export class LogView {
  constructor(
    readonly buffer: LogBuffer,
    /** Index of the step shown, or null for all steps. */
    readonly step: number | null,
  ) {}

  get count(): number {
    return this.step === null ? this.buffer.lines.length : (this.buffer.byStep[this.step]?.length ?? 0);
  }

  line(row: number): Line {
    const index = this.step === null ? row : this.buffer.byStep[this.step]![row]!;
    return this.buffer.lines[index]!;
  }

  /** The number shown in the gutter (and in `#L…` permalinks): seq for all steps, n for one. */
  numberOf(line: Line): number {
    return this.step === null ? line.seq : line.n;
  }

  /** The row showing line `number`, or -1 (numbers increase with rows: binary search). */
  rowOf(number: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.numberOf(this.line(mid));
      if (at === number) return mid;
      if (at < number) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
