import type { StoredLogLine } from './types.js';

export type LogListener = (lines: readonly StoredLogLine[]) => void;

/**
 * Live fan-out of stored log lines to any number of readers in this process. Lines reach the
 * hub only after they are stored, so whatever a reader was sent survives a crash.
 */
export class LogHub {
  private readonly listeners = new Map<number, Set<LogListener>>();
  private readonly endListeners = new Map<number, Set<() => void>>();
  /** Builds whose log a writer in this process is writing (until `end`). */
  private readonly writers = new Set<number>();

  subscribe(buildId: number, onLines: LogListener, onEnd: () => void): () => void {
    const lines = this.listeners.get(buildId) ?? new Set();
    lines.add(onLines);
    this.listeners.set(buildId, lines);
    const ends = this.endListeners.get(buildId) ?? new Set();
    ends.add(onEnd);
    this.endListeners.set(buildId, ends);
    return () => {
      lines.delete(onLines);
      ends.delete(onEnd);
    };
  }

  publish(buildId: number, lines: readonly StoredLogLine[]): void {
    for (const listener of this.listeners.get(buildId) ?? []) listener(lines);
  }

  /**
   * A writer in this process writes the build's log: every new line of it comes through here,
   * so a live reader need not poll the store for lines written elsewhere.
   */
  writing(buildId: number): void {
    this.writers.add(buildId);
  }

  /** Whether a writer in this process writes the build's log (see {@link writing}). */
  isWritten(buildId: number): boolean {
    return this.writers.has(buildId);
  }

  /** The build's log is complete: readers finish. */
  end(buildId: number): void {
    this.writers.delete(buildId);
    for (const listener of this.endListeners.get(buildId) ?? []) listener();
    this.listeners.delete(buildId);
    this.endListeners.delete(buildId);
  }

  subscriberCount(buildId: number): number {
    return this.listeners.get(buildId)?.size ?? 0;
  }
}
