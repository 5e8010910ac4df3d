import { OUTPUT_START, type OutputPosition, type OutputSink, type OutputStream } from '../executors/types.js';
import { MAX_LINE_LENGTH, MAX_LOGICAL_LINE, cutPieces } from '../executors/lines.js';

/** Replacement shown instead of a secret value. */
export const MASK = '********';

/**
 * Secrets shorter than this are not masked: masking a 1–2 character value would blank out
 * ordinary text everywhere and reveal the value by its pattern anyway.
 */
export const MIN_MASKED_LENGTH = 3;

/**
 * Terminal escape sequences a program may put between the characters of a value (`grep
 * --color=always` colours the match inside it): CSI (`ESC [ … final`, also as the 8-bit
 * `\x9b`), OSC (`ESC ] … BEL` or `ESC ] … ESC \`, hyperlinks and titles) and the two-byte
 * `ESC x` forms. Matching ignores them.
 */
// eslint-disable-next-line no-control-regex -- escape sequences are what it matches
const ESCAPE = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/**
 * Builds a function that masks every secret value in a log line. Matching is done on the
 * line with terminal escape sequences left out, and a match replaces the whole span it covers
 * in the original line, escapes inside it included: so a value coloured in the middle is
 * masked too. Guarantee: the masked line with its escape sequences removed contains no value
 * (each line of a multi-line value, trimmed, of at least {@link MIN_MASKED_LENGTH}).
 *
 * Output is masked per logical line: {@link maskingSink} joins the pieces of a line cut at
 * the piece cap first, and a value split across two output chunks is one line by then.
 */
export function createMasker(secretValues: Iterable<string>): (text: string) => string {
  const needles = new Set<string>();
  for (const value of secretValues) {
    for (const part of value.split(/\r?\n/)) {
      // A value's own escapes would never match the stripped text; values rarely hold any.
      const trimmed = part.replace(ESCAPE, '').trim();
      if (trimmed.length >= MIN_MASKED_LENGTH) needles.add(trimmed);
    }
  }
  if (needles.size === 0) return (text) => text;
  // Longest first so a value that contains another is masked whole.
  const ordered = [...needles].sort((a, b) => b.length - a.length);
  return (text) => {
    if (text.includes('\x1b') || text.includes('\x9b')) return maskAcrossEscapes(text, ordered);
    if (!ordered.some((needle) => text.includes(needle))) return text;
    return maskSpans(text, text, undefined, ordered);
  };
}

/**
 * Masks on the text without escapes: `plain` is the text with them removed and `at[i]` the
 * index in `text` of `plain[i]`. Matches of all needles are collected as spans of `text`,
 * overlapping spans merged, and each span replaced by one mask.
 */
function maskAcrossEscapes(text: string, needles: readonly string[]): string {
  let plain = '';
  const at: number[] = [];
  let last = 0;
  for (const match of text.matchAll(ESCAPE)) {
    for (let i = last; i < match.index; i++) at.push(i);
    plain += text.slice(last, match.index);
    last = match.index + match[0].length;
  }
  for (let i = last; i < text.length; i++) at.push(i);
  plain += text.slice(last);

  return maskSpans(text, plain, at, needles);
}

/**
 * Replaces every match of a needle in `plain` by one mask over the span it covers in `text`
 * (`at` maps plain indexes to text indexes; none: the same text). Overlapping matches are
 * merged, so two values that overlap are masked as one.
 */
function maskSpans(
  text: string,
  plain: string,
  at: readonly number[] | undefined,
  needles: readonly string[],
): string {
  const spans: [number, number][] = [];
  for (const needle of needles) {
    // Leftmost, not overlapping: any other occurrence overlaps a masked one, so none is left whole.
    for (let i = plain.indexOf(needle); i !== -1; i = plain.indexOf(needle, i + needle.length)) {
      const end = i + needle.length - 1;
      spans.push(at === undefined ? [i, end + 1] : [at[i]!, at[end]! + 1]);
    }
  }
  if (spans.length === 0) return text;
  spans.sort((x, y) => x[0] - y[0] || y[1] - x[1]);
  let out = '';
  let pos = 0;
  let [start, end] = spans[0]!;
  for (const [from, to] of spans) {
    if (from < end) {
      end = Math.max(end, to);
      continue;
    }
    out += text.slice(pos, start) + MASK;
    pos = end;
    [start, end] = [from, to];
  }
  return out + text.slice(pos, start) + MASK + text.slice(end);
}

/** A sink that masks whole logical lines; `end` emits a line still waiting for its rest. */
export interface MaskingSink extends OutputSink {
  end(): void;
}

/**
 * Wraps `emit` in a sink that joins the pieces of a cut line (`continues`), masks the whole
 * line and cuts it again at the piece cap. A line's pieces are thus held until its last one
 * comes: at most the logical-line cap per stream (the splitter truncates longer lines); past
 * that (an executor that does not truncate), what came so far is masked and sent on.
 *
 * `emit` also gets `pieces`: how many pieces of that stream the sink has consumed, counted
 * from `from` (where the executor's tail started), when the piece is sent. Every piece of a
 * held line is sent with the count after its last piece, so a reader that resumes the
 * executor's output from the highest `pieces` it stored gets no piece twice and loses none:
 * a line whose rest had not come yet was not sent, and comes again whole. A sink left
 * without `end()` (detached) drops what it holds for that reason.
 */
export function maskingSink(
  mask: (text: string) => string,
  emit: (stream: OutputStream, text: string, pieces: number) => void,
  from: OutputPosition = OUTPUT_START,
): MaskingSink {
  const held: Record<OutputStream, { parts: string[]; length: number }> = {
    stdout: { parts: [], length: 0 },
    stderr: { parts: [], length: 0 },
  };
  const consumed: Record<OutputStream, number> = { stdout: from.stdout, stderr: from.stderr };
  const send = (stream: OutputStream) => {
    const line = held[stream];
    const whole = line.parts.join('');
    line.parts = [];
    line.length = 0;
    for (const piece of cutPieces(mask(whole), MAX_LINE_LENGTH)) emit(stream, piece, consumed[stream]);
  };
  return {
    line(stream, text, continues = false) {
      const line = held[stream];
      consumed[stream] += 1;
      if (!continues && line.parts.length === 0) {
        // A whole line in one piece (nearly every line): what `send` does, without its arrays.
        const masked = mask(text);
        if (masked.length <= MAX_LINE_LENGTH) emit(stream, masked, consumed[stream]);
        else for (const piece of cutPieces(masked, MAX_LINE_LENGTH)) emit(stream, piece, consumed[stream]);
        return;
      }
      line.parts.push(text);
      line.length += text.length;
      if (!continues || line.length >= MAX_LOGICAL_LINE + MAX_LINE_LENGTH) send(stream);
    },
    end() {
      for (const stream of ['stdout', 'stderr'] as const) if (held[stream].parts.length > 0) send(stream);
    },
  };
}
