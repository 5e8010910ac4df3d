import type { LogBatch, LogLine, LogRun } from './dto.js';

/**
 * The live log's wire format (`GET /builds/{id}/logs?follow=1`), shared by the server that
 * encodes it and the CLI and web UI that decode it. No imports with values: the web UI takes
 * this module without TypeBox.
 *
 * By default lines come as `lines` events, each a {@link LogBatch}: the lines stored together,
 * in runs of one step and stream whose stage, step and stream are written once, with the
 * times as differences. Its `id:` is the seq of its last line, so `Last-Event-ID` resumes
 * exactly after it. 100,000 short lines take ~1 MB this way instead of ~14 MB as one `line`
 * event each, and the server encodes a batch once for all its readers.
 *
 * `lag` (data: {@link LogLag}) ends a stream whose reader fell too far behind: the server does
 * not buffer without bound. The client reconnects at once with its `Last-Event-ID`.
 */

/** The `format` query parameter: `lines` events (default) or one `line` event per line. */
export type LogStreamFormat = 'batch' | 'line';

/** Data of the `lag` event. */
export interface LogLag {
  /** Seq of the last line sent: the resume point. */
  after: number;
  message: string;
}

/** The columns a batch needs of a line (the server's stored lines have more). */
export interface BatchableLine {
  seq: number;
  stage: string;
  step: string;
  stream: LogLine['stream'];
  n: number;
  /** Milliseconds since the epoch. */
  time: number;
  text: string;
}

/** Lines (ascending seq) as a batch: a new run wherever a line does not follow its predecessor. */
export function toLogBatch(lines: Iterable<BatchableLine>): LogBatch {
  const runs: LogRun[] = [];
  let run: LogRun | undefined;
  let prev: BatchableLine | undefined;
  for (const line of lines) {
    if (
      run !== undefined &&
      prev !== undefined &&
      line.seq === prev.seq + 1 &&
      line.n === prev.n + 1 &&
      line.step === prev.step &&
      line.stage === prev.stage &&
      line.stream === prev.stream
    ) {
      run.dt.push(line.time - prev.time);
      run.text.push(line.text);
    } else {
      run = {
        seq: line.seq,
        stage: line.stage,
        step: line.step,
        stream: line.stream,
        n: line.n,
        time: line.time,
        dt: [0],
        text: [line.text],
      };
      runs.push(run);
    }
    prev = line;
  }
  return { runs };
}

/**
 * The lines of a batch as the API's {@link LogLine}s. Throws a plain Error on data that is not
 * a batch (a server or proxy that sent something else), never a TypeError from deep inside.
 */
export function fromLogBatch(data: unknown): LogLine[] {
  const runs = (data as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs)) throw new Error('malformed `lines` event: no runs');
  const out: LogLine[] = [];
  for (const run of runs as Partial<LogRun>[]) {
    const { seq, stage, step, stream, n, time, dt, text } = run;
    if (
      typeof seq !== 'number' ||
      typeof stage !== 'string' ||
      typeof step !== 'string' ||
      typeof stream !== 'string' ||
      typeof n !== 'number' ||
      typeof time !== 'number' ||
      !Array.isArray(dt) ||
      !Array.isArray(text) ||
      dt.length !== text.length
    )
      throw new Error('malformed `lines` event: a run lacks a field');
    let at = time;
    let iso = '';
    let isoAt = Number.NaN;
    for (let i = 0; i < text.length; i += 1) {
      at += dt[i]!;
      // Lines printed together share their millisecond: one Date per run of equal times.
      if (at !== isoAt) {
        iso = new Date(at).toISOString();
        isoAt = at;
      }
      out.push({ seq: seq + i, stage, step, stream, n: n + i, time: iso, text: text[i]! });
    }
  }
  return out;
}
