import type { OutputStream } from '../../executors/types.js';

/** One stored log line of a build. `seq` orders every line of the build (all steps). */
export interface StoredLogLine {
  /** 1-based, gapless per build: the SSE event id, so a reader resumes exactly. */
  seq: number;
  stage: string;
  /** Step name, or `service:<name>` for a service's own log, or `slipway` for server notes. */
  step: string;
  stream: OutputStream | 'system';
  /** 1-based line number within its step (for permalinks). */
  n: number;
  time: number;
  text: string;
  /**
   * Output lines only: the attempt of the step that printed it and how many pieces of its
   * stream the executor had delivered when it was written (LogLine.position). A successor
   * resumes the step's output after the highest stored count, so no line is stored twice.
   */
  src?: { attempt: number; pieces: number };
}

/**
 * Durable storage of build logs in chunks. Lines are handed over in batches; once `append`
 * resolves, the lines survive a crash of the server process. Implementations: filesystem
 * (under the data dir) and, later, S3.
 */
export interface LogStore {
  append(buildId: number, lines: readonly StoredLogLine[]): Promise<void>;
  /** Lines with `seq > afterSeq`, in order. */
  read(buildId: number, afterSeq: number, limit?: number): Promise<StoredLogLine[]>;
  /** Highest stored seq of a build (0 when none): where a new writer continues. */
  lastSeq(buildId: number): Promise<number>;
  remove(buildId: number): Promise<void>;
}
