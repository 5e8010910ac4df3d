/**
 * A small ANSI SGR parser for build logs: foreground 30–37 and 90–97, background 40–47 and
 * 100–107, bold (1/22), defaults (39/49) and reset (0 or empty). Other escape sequences (cursor
 * moves, erase-line, OSC titles) are dropped. The output is plain text segments: the viewer
 * renders them as React text nodes, so nothing in a log can ever become HTML.
 */

export interface Segment {
  text: string;
  /** Colour index 0–15 (8–15 are the bright ones), or null for the default. */
  fg: number | null;
  bg: number | null;
  bold: boolean;
  /** Part of a search match (set by {@link markRanges}). */
  mark?: boolean;
}

// CSI (ESC [ params final), OSC (ESC ] … BEL or ESC \), and two-byte escapes.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;

interface Pen {
  fg: number | null;
  bg: number | null;
  bold: boolean;
}

/** What a terminal would show of a line that redraws itself with `\r` (progress bars). */
function lastRedraw(line: string): string {
  const cr = line.lastIndexOf('\r', line.length - 2);
  return cr === -1 ? line.replace(/\r$/, '') : line.slice(cr + 1).replace(/\r$/, '');
}

function applySgr(pen: Pen, params: string): void {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code === 0) {
      pen.fg = null;
      pen.bg = null;
      pen.bold = false;
    } else if (code === 1) pen.bold = true;
    else if (code === 22) pen.bold = false;
    else if (code >= 30 && code <= 37) pen.fg = code - 30;
    else if (code === 39) pen.fg = null;
    else if (code >= 40 && code <= 47) pen.bg = code - 40;
    else if (code === 49) pen.bg = null;
    else if (code >= 90 && code <= 97) pen.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) pen.bg = code - 100 + 8;
    else if (code === 38 || code === 48) {
      // 256-colour (5;n) and true-colour (2;r;g;b): keep the 16 basic ones, skip the rest.
      const mode = codes[i + 1];
      if (mode === 5) {
        const n = codes[i + 2];
        if (n !== undefined && n < 16) {
          if (code === 38) pen.fg = n;
          else pen.bg = n;
        }
        i += 2;
      } else if (mode === 2) i += 4;
    }
  }
}

/** Splits a line into styled segments. Lines without an escape cost one `indexOf`. */
export function parseAnsi(line: string): Segment[] {
  const text = line.includes('\r') ? lastRedraw(line) : line;
  if (!text.includes('\x1b')) return text === '' ? [] : [{ text, fg: null, bg: null, bold: false }];
  const segments: Segment[] = [];
  const pen: Pen = { fg: null, bg: null, bold: false };
  let from = 0;
  const push = (end: number) => {
    if (end > from) segments.push({ text: text.slice(from, end), fg: pen.fg, bg: pen.bg, bold: pen.bold });
  };
  for (const m of text.matchAll(ESCAPE)) {
    push(m.index);
    if (m[2] === 'm') applySgr(pen, m[1] ?? '');
    from = m.index + m[0].length;
  }
  push(text.length);
  return segments;
}

/** The text a person sees: escapes removed, `\r` redraws resolved. */
export function stripAnsi(line: string): string {
  const text = line.includes('\r') ? lastRedraw(line) : line;
  return text.includes('\x1b') ? text.replace(ESCAPE, '') : text;
}

/** Start offsets of every case-insensitive occurrence of `needle` (already lower-cased). */
export function findAll(haystack: string, needle: string): number[] {
  if (needle === '') return [];
  const lower = haystack.toLowerCase();
  const found: number[] = [];
  for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, at + needle.length))
    found.push(at);
  return found;
}

/** Cuts segments at the given ranges of the plain text and flags the parts inside them. */
export function markRanges(segments: Segment[], starts: number[], length: number): Segment[] {
  if (starts.length === 0 || length === 0) return segments;
  const out: Segment[] = [];
  let offset = 0;
  let r = 0;
  for (const segment of segments) {
    const end = offset + segment.text.length;
    let at = offset;
    while (at < end) {
      while (r < starts.length && starts[r]! + length <= at) r++;
      const start = starts[r];
      if (start === undefined || start >= end) {
        out.push({ ...segment, text: segment.text.slice(at - offset) });
        at = end;
      } else if (start > at) {
        out.push({ ...segment, text: segment.text.slice(at - offset, start - offset) });
        at = start;
      } else {
        const stop = Math.min(end, start + length);
        out.push({ ...segment, text: segment.text.slice(at - offset, stop - offset), mark: true });
        at = stop;
      }
    }
    offset = end;
  }
  return out;
}
