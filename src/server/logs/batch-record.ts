import { toLogBatch } from '../../contract/log-stream.js';
import type { StoredLogLine } from './types.js';

/**
 * The stored form of a batch of lines: one JSON object per batch, not one per line. It is the
 * live stream's {@link LogBatch} (runs of one step and stream, whose stage, step and stream
 * are written once and whose times are differences) with a `src` list in front:
 *
 *   {"src":[3,2,1,-1],"runs":[{"seq":1,"stage":"","step":"go","stream":"stdout","n":1,...}]}
 *
 * `src` gives each line's {@link StoredLogLine.src} in order, as segments: `count, attempt,
 * pieces` for `count` lines of that attempt whose pieces count up by one from `pieces`, and
 * `-count` for `count` lines without one. 100,000 short lines take ~1 MB this way instead of
 * ~14 MB, and a batch costs one `JSON.stringify` of few objects instead of one per line.
 */

/** Lines stored together, with the LogBatch JSON of exactly those lines (see {@link batchJson}). */
const encoded = new WeakMap<readonly StoredLogLine[], string>();

/**
 * The {@link LogBatch} JSON of `lines` (ascending seq), made once per array: the store and
 * every live reader's `lines` event use the same string. An array must not change once encoded
 * (the writer never changes a batch it handed out).
 */
export function batchJson(lines: readonly StoredLogLine[]): string {
  let json = encoded.get(lines);
  if (json === undefined) {
    json = JSON.stringify(toLogBatch(lines));
    encoded.set(lines, json);
  }
  return json;
}

/** The record of `lines` (ascending, consecutive seq): one line of a chunk file, without its `\n`. */
export function encodeRecord(lines: readonly StoredLogLine[]): string {
  const src: number[] = [];
  let segment = -1;
  for (const line of lines) {
    const from = line.src;
    if (from === undefined) {
      if (segment >= 0 && src[segment]! < 0) src[segment]! -= 1;
      else {
        segment = src.length;
        src.push(-1);
      }
    } else if (
      segment >= 0 &&
      src[segment]! > 0 &&
      src[segment + 1] === from.attempt &&
      src[segment + 2]! + src[segment]! === from.pieces
    ) {
      src[segment]! += 1;
    } else {
      segment = src.length;
      src.push(1, from.attempt, from.pieces);
    }
  }
  // `{"runs":…}` with `"src":[…],` put in front: the batch's JSON is made once, not rebuilt.
  return `{"src":${JSON.stringify(src)},${batchJson(lines).slice(1)}`;
}

/** Whether a parsed chunk line is a batch record (else it is one stored line, the older form). */
export function isRecord(parsed: unknown): parsed is { src: unknown; runs: unknown } {
  return typeof parsed === 'object' && parsed !== null && 'runs' in parsed;
}

/**
 * Appends the lines of a parsed record to `out`. Throws a plain Error on a record that is not
 * whole (a damaged file): the caller skips it, as it skips a damaged line, and `out` is left
 * as it was.
 */
export function decodeRecord(record: { src: unknown; runs: unknown }, out: StoredLogLine[]): void {
  const { src, runs } = record;
  if (!Array.isArray(runs) || !Array.isArray(src)) throw new Error('damaged log record');
  const lines: StoredLogLine[] = [];
  for (const run of runs as unknown[]) {
    const { seq, stage, step, stream, n, time, dt, text } = run as Record<string, unknown>;
    if (
      typeof seq !== 'number' ||
      typeof stage !== 'string' ||
      typeof step !== 'string' ||
      (stream !== 'stdout' && stream !== 'stderr' && stream !== 'system') ||
      typeof n !== 'number' ||
      typeof time !== 'number' ||
      !Array.isArray(dt) ||
      !Array.isArray(text) ||
      dt.length !== text.length
    )
      throw new Error('damaged log record');
    let at = time;
    for (let i = 0; i < text.length; i++) {
      const delta: unknown = dt[i];
      const line: unknown = text[i];
      if (typeof delta !== 'number' || typeof line !== 'string') throw new Error('damaged log record');
      at += delta;
      lines.push({ seq: seq + i, stage, step, stream, n: n + i, time: at, text: line });
    }
  }
  let index = 0;
  for (let s = 0; s < src.length;) {
    const count = src[s] as number;
    if (count < 0) {
      index -= count;
      s += 1;
      continue;
    }
    const attempt = src[s + 1] as number;
    const pieces = src[s + 2] as number;
    for (let i = 0; i < count && index < lines.length; i++)
      lines[index++]!.src = { attempt, pieces: pieces + i };
    s += 3;
  }
  if (index !== lines.length) throw new Error('damaged log record');
  for (const line of lines) out.push(line);
}
