import { describe, expect, it } from 'vitest';
import { MAX_LINE_LENGTH } from '../lines.js';
import type { OutputPosition, OutputStream } from '../types.js';
import { LogRereader, StepOutputReader } from './output.js';
import { exitOf } from './steps.js';

type Piece = { stream: OutputStream; text: string; continues: boolean };

const frame = (stream: OutputStream, bytes: Buffer): Buffer => {
  const header = Buffer.alloc(8);
  header[0] = stream === 'stderr' ? 2 : 1;
  header.writeUInt32BE(bytes.length, 4);
  return Buffer.concat([header, bytes]);
};

/** A seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * What a step prints, as the writes it makes: short lines, a `\r\n` line, multi-byte
 * characters, two lines longer than the piece cap (one cut right after a `\r`), and a last
 * line without a newline.
 */
function writes(): Array<[OutputStream, Buffer]> {
  const long = 'é'.repeat(MAX_LINE_LENGTH) + 'x'.repeat(1000);
  const atCr = 'y'.repeat(MAX_LINE_LENGTH - 1) + '\r\nafter';
  return [
    ['stdout', Buffer.from('one\ntwo\r\n')],
    ['stderr', Buffer.from('warn 1\n')],
    ['stdout', Buffer.from(`${long}\n`)],
    ['stdout', Buffer.from('😀 emoji\n')],
    ['stderr', Buffer.from(`${atCr}\n`)],
    ['stdout', Buffer.from('x'.repeat(3 * MAX_LINE_LENGTH + 17))],
    ['stdout', Buffer.from('\nlast without newline')],
  ];
}

/**
 * The same output framed the way an engine might: each write cut into frames of random sizes
 * (Podman cuts long lines into entries), the framed bytes then cut into random chunks.
 */
function chunked(seed: number): Buffer[] {
  const next = random(seed);
  const framed: Buffer[] = [];
  for (const [stream, bytes] of writes()) {
    for (let at = 0; at < bytes.length;) {
      const size = 1 + Math.floor(next() * Math.min(bytes.length - at, seed % 2 ? 9000 : 300));
      framed.push(frame(stream, bytes.subarray(at, at + size)));
      at += size;
    }
  }
  const all = Buffer.concat(framed);
  const chunks: Buffer[] = [];
  for (let at = 0; at < all.length;) {
    const size = 1 + Math.floor(next() * 20_000);
    chunks.push(all.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function readAll(chunks: Buffer[], from: OutputPosition = { stdout: 0, stderr: 0 }): Piece[] {
  const pieces: Piece[] = [];
  const reader = new StepOutputReader(from, {
    line: (stream, text, continues) => pieces.push({ stream, text, continues: continues === true }),
  });
  for (const chunk of chunks) reader.write(chunk);
  reader.end();
  return pieces;
}

const ofStream = (pieces: Piece[], stream: OutputStream) => pieces.filter((p) => p.stream === stream);

describe('StepOutputReader', () => {
  it('splits the same bytes into the same pieces however the engine frames and chunks them', () => {
    const reference = readAll(chunked(1));
    expect(ofStream(reference, 'stdout').length).toBeGreaterThan(8);
    expect(reference.some((p) => p.continues)).toBe(true);
    expect(reference.at(-1)).toEqual({ stream: 'stdout', text: 'last without newline', continues: false });
    for (let seed = 2; seed < 40; seed++) {
      const pieces = readAll(chunked(seed));
      expect(ofStream(pieces, 'stdout')).toEqual(ofStream(reference, 'stdout'));
      expect(ofStream(pieces, 'stderr')).toEqual(ofStream(reference, 'stderr'));
    }
  });

  it('skips exactly `from` pieces of each stream and delivers the rest in order', () => {
    const all = readAll(chunked(3));
    const out = ofStream(all, 'stdout');
    const err = ofStream(all, 'stderr');
    for (let k = 0; k <= out.length; k++) {
      const j = k % (err.length + 1);
      const rest = readAll(chunked(100 + k), { stdout: k, stderr: j });
      expect(ofStream(rest, 'stdout')).toEqual(out.slice(k));
      expect(ofStream(rest, 'stderr')).toEqual(err.slice(j));
    }
  });
});

describe('LogRereader', () => {
  /** The log as the engine serves it after `n` entries, the last one maybe half written. */
  const entries: Array<[OutputStream, string]> = [
    ['stdout', 'a1\n'],
    ['stderr', 'e1\n'],
    ['stdout', 'a2\n'],
    ['stdout', 'a3 long entry\n'],
    ['stdout', 'a4\n'],
  ];
  const log = (n: number, lastCut?: number) =>
    Buffer.concat(
      entries.slice(0, n).map(([stream, text], i) => {
        const bytes = Buffer.from(text);
        return frame(stream, i === n - 1 && lastCut !== undefined ? bytes.subarray(0, lastCut) : bytes);
      }),
    );

  it('feeds every byte once over reads from the start, holding back a last entry until a later read confirms it', () => {
    const pieces: string[] = [];
    const rereader = new LogRereader(
      new StepOutputReader(
        { stdout: 0, stderr: 0 },
        { line: (stream, text) => pieces.push(`${stream}:${text}`) },
      ),
    );
    const read = (bytes: Buffer, final: boolean) => {
      const r = rereader.read(final);
      // Chunked at every 5 bytes, as a socket may deliver it.
      for (let at = 0; at < bytes.length; at += 5) r.write(bytes.subarray(at, at + 5));
      r.done();
    };
    read(log(2), false); // e1 is last: held back
    expect(pieces).toEqual(['stdout:a1']);
    read(log(2), false); // the same last entry again: complete
    expect(pieces).toEqual(['stdout:a1', 'stderr:e1']);
    read(log(4, 4), false); // a3 half written ("a3 l"): held back, a2 fed
    expect(pieces).toEqual(['stdout:a1', 'stderr:e1', 'stdout:a2']);
    read(log(4), false); // a3 whole now but not confirmed yet
    expect(pieces).toEqual(['stdout:a1', 'stderr:e1', 'stdout:a2']);
    read(log(5), true); // exited: all of it, each line once
    expect(pieces).toEqual(['stdout:a1', 'stderr:e1', 'stdout:a2', 'stdout:a3 long entry', 'stdout:a4']);
  });
});

describe('exitOf', () => {
  const inspect = (state: Record<string, unknown>) => ({
    Id: 'c',
    State: { Running: false, Status: 'exited', ...state },
  });

  it('maps an OOM-killed container to oom_killed with exit code 137', () => {
    // Podman cannot portably be made to OOM-kill a container here (the pipeline has no memory
    // limit field): the mapping of the engine's answer is what is checked.
    expect(exitOf(inspect({ ExitCode: 137, OOMKilled: true }))).toEqual({
      kind: 'error',
      code: 'oom_killed',
      message: 'the step was killed for using more memory than its limit (out of memory)',
      exitCode: 137,
    });
  });

  it('gives the exit code of a finished container and nothing while it runs', () => {
    expect(exitOf(inspect({ ExitCode: 3, OOMKilled: false }))).toEqual({ kind: 'exited', exitCode: 3 });
    expect(exitOf(inspect({ Running: true, Status: 'running', ExitCode: 0 }))).toBeUndefined();
    expect(exitOf(inspect({ Status: 'created', ExitCode: 0 }))).toBeUndefined();
  });
});
