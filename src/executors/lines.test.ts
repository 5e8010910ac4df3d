import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_LENGTH, MAX_LOGICAL_LINE, cutPieces, truncationMarker } from './lines.js';

function split(chunks: (Buffer | string)[], maxLineLength?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), maxLineLength === undefined ? {} : { maxLineLength });
  for (const c of chunks) s.write(typeof c === 'string' ? Buffer.from(c) : c);
  s.flush();
  return lines;
}

/** Feeds `bytes` in pieces of the given sizes (cycled). */
function pieces(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const n = sizes[k % sizes.length] ?? 1;
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('LineSplitter', () => {
  it('splits on \\n and \\r\\n, keeps empty lines, adds no trailing empty line', () => {
    expect(split(['a\nb\r\n\nc\n'])).toEqual(['a', 'b', '', 'c']);
  });

  it('joins lines across chunks, including a \\r\\n cut between \\r and \\n', () => {
    expect(split(['he', 'llo\r', '\nwor', 'ld\n'])).toEqual(['hello', 'world']);
  });

  it('keeps a lone \\r inside a line (progress bars)', () => {
    expect(split(['10%\r50%\r100%\n'])).toEqual(['10%\r50%\r100%']);
  });

  it('emits the partial last line only on flush', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.write(Buffer.from('done\npartial'));
    expect(lines).toEqual(['done']);
    s.flush();
    expect(lines).toEqual(['done', 'partial']);
    s.flush();
    expect(lines).toEqual(['done', 'partial']);
  });

  it('decodes multi-byte characters cut at any byte', () => {
    const text = 'héllo — 日本語 🚀 👩‍👩‍👧\nzweite Zeile ✓\n';
    const expected = ['héllo — 日本語 🚀 👩‍👩‍👧', 'zweite Zeile ✓'];
    for (const sizes of [[1], [2], [3], [5, 1, 7]]) {
      expect(split(pieces(Buffer.from(text), sizes))).toEqual(expected);
    }
  });

  it('turns invalid bytes into U+FFFD and never throws', () => {
    expect(split([Buffer.from([0x61, 0xff, 0xfe, 0x62, 0x0a])])).toEqual(['a\ufffd\ufffdb']);
    const garbage = Buffer.alloc(100_000);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    expect(() => split(pieces(garbage, [4096, 3, 17]))).not.toThrow();
  });

  it('flushes an incomplete UTF-8 sequence at end of stream as U+FFFD', () => {
    expect(split([Buffer.from([0x61, 0xe6, 0x97])])).toEqual(['a\ufffd']);
  });

  it('splits a line over the cap into cap-sized lines', () => {
    expect(split(['abcdefghij\n'], 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(split(['abcdefgh\n'], 4)).toEqual(['abcd', 'efgh']);
    expect(split(['abcd\n'], 4)).toEqual(['abcd']);
  });

  it('splits an unterminated long line as it streams in', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), { maxLineLength: 4 });
    for (const c of 'abcdefghij') s.write(Buffer.from(c));
    expect(lines).toEqual(['abcd', 'efgh']);
    s.flush();
    expect(lines).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('does not leave a \\r of a \\r\\n at the end of a split piece', () => {
    expect(split(['abcd', '\r', '\n'], 4)).toEqual(['abcd']);
    expect(split(['abc', 'd\r', '\nx'], 4)).toEqual(['abcd', 'x']);
  });

  it('never cuts a surrogate pair in half', () => {
    const lines = split(['ab🚀🚀🚀\n'], 3);
    expect(lines.join('')).toBe('ab🚀🚀🚀');
    for (const l of lines)
      expect(l).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  it('caps lines at MAX_LINE_LENGTH by default', () => {
    const lines = split(['x'.repeat(200_000)]);
    expect(lines.map((l) => l.length)).toEqual([
      MAX_LINE_LENGTH,
      MAX_LINE_LENGTH,
      MAX_LINE_LENGTH,
      200_000 - 3 * MAX_LINE_LENGTH,
    ]);
  });

  it('gives the same lines however the stream is chunked', () => {
    let text = '';
    for (let i = 0; i < 2000; i++)
      text += `${i} ${'é🚀'.repeat(i % 7)}${i % 5 === 0 ? '\r\n' : '\n'}${i % 11 === 0 ? '\n' : ''}`;
    text += 'tail';
    const bytes = Buffer.from(text);
    const whole = split([bytes], 16);
    for (const sizes of [[1], [7], [64, 3], [4096]]) expect(split(pieces(bytes, sizes), 16)).toEqual(whole);
  });

  it('gives the same pieces and flags for lines around the cap, with \\r\\n, whole or byte by byte', () => {
    let text = '';
    for (const length of [0, 1, 7, 8, 9, 16, 17])
      for (const end of ['\n', '\r\n', '\r\r\n'])
        text += 'é'.repeat(length >> 1) + 'x'.repeat(length & 1) + end;
    const bytes = Buffer.from(text + '\n\r\n');
    const run = (chunks: Buffer[]) => {
      const got: [string, boolean][] = [];
      const s = new LineSplitter((line, continues) => got.push([line, continues]), { maxLineLength: 8 });
      for (const chunk of chunks) s.write(chunk);
      s.flush();
      return got;
    };
    const byByte = run(pieces(bytes, [1]));
    expect(byByte.filter(([, continues]) => continues).length).toBeGreaterThan(0);
    expect(run([bytes])).toEqual(byByte);
    expect(run(pieces(bytes, [5, 13]))).toEqual(byByte);
  });

  it('flags every piece of a cut line but the last as continuing', () => {
    const got: [string, boolean][] = [];
    const s = new LineSplitter((text, continues) => got.push([text, continues]), { maxLineLength: 4 });
    s.write(Buffer.from('abcdefghij\nxy\n'));
    s.flush();
    expect(got).toEqual([
      ['abcd', true],
      ['efgh', true],
      ['ij', false],
      ['xy', false],
    ]);
  });

  it('truncates a line past the logical cap with a marker and keeps the next line whole', () => {
    const got: [string, boolean][] = [];
    const s = new LineSplitter((text, continues) => got.push([text, continues]), {
      maxLineLength: 4,
      maxLogicalLine: 10,
    });
    for (const chunk of ['abcdefg', 'hijklmn', 'op\r', '\nxy\n']) s.write(Buffer.from(chunk));
    s.flush();
    expect(got).toEqual([
      ['abcd', true],
      ['efgh', true],
      ['ij', true],
      [truncationMarker(16, 10), false],
      ['xy', false],
    ]);
  });

  it('gives the same truncated lines however the stream is chunked', () => {
    const bytes = Buffer.from(`${'é🚀x'.repeat(40)}\nshort\r\n${'y'.repeat(33)}\r\n${'z'.repeat(50)}`);
    const run = (chunks: Buffer[]) => {
      const got: string[] = [];
      const s = new LineSplitter((text, continues) => got.push(`${continues ? '+' : '.'}${text}`), {
        maxLineLength: 8,
        maxLogicalLine: 20,
      });
      for (const c of chunks) s.write(c);
      s.flush();
      return got;
    };
    const whole = run([bytes]);
    expect(whole.at(-1)).toBe(`.${truncationMarker(50, 20)}`);
    for (const sizes of [[1], [3], [7, 2], [64]]) expect(run(pieces(bytes, sizes))).toEqual(whole);
  });

  it('keeps 1 MiB of a 50 MB line and never holds more than a piece of it', () => {
    const got: string[] = [];
    const s = new LineSplitter((text) => got.push(text));
    const chunk = Buffer.alloc(64 * 1024, 'a');
    for (let sent = 0; sent < 52_428_800; sent += chunk.length) s.write(chunk);
    s.write(Buffer.from('\nnext\n'));
    s.flush();
    expect(got.slice(0, -2).join('').length).toBe(MAX_LOGICAL_LINE);
    expect(got.slice(0, -2).every((piece) => piece.length <= MAX_LINE_LENGTH)).toBe(true);
    expect(got.slice(-2)).toEqual(['… [line truncated: 52,428,800 bytes, kept 1,048,576]', 'next']);
  });

  it('cuts text into pieces without splitting a surrogate pair', () => {
    expect(cutPieces('abcdefg', 3)).toEqual(['abc', 'def', 'g']);
    expect(cutPieces('ab🚀cd', 3)).toEqual(['ab', '🚀c', 'd']);
    expect(cutPieces('', 3)).toEqual(['']);
  });

  it('rejects a cap that cannot make progress', () => {
    expect(() => new LineSplitter(() => undefined, { maxLineLength: 1 })).toThrow(RangeError);
  });
});
