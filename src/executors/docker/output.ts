/**
 * A container's multiplexed output (attach or logs, no TTY) turned into sink lines. The split
 * into pieces depends on the bytes only, never on how the engine chunks them (frames cut
 * anywhere, lines longer than `MAX_LINE_LENGTH` cut into pieces at the same places), so
 * counting pieces per stream is a position a later reader can resume from.
 */
import { LineSplitter } from '../lines.js';
import type { OutputPosition, OutputSink, OutputStream } from '../types.js';
import { FrameDemuxer } from './demux.js';

/**
 * Reads a multiplexed stream from its first byte and delivers the pieces after `from` (per
 * stream) to `sink`; the ones before are counted and dropped.
 */
export class StepOutputReader {
  private readonly splitters: Record<OutputStream, LineSplitter>;
  private readonly demux: FrameDemuxer;
  /** Pieces of each stream split so far, delivered or skipped. */
  readonly seen: OutputPosition = { stdout: 0, stderr: 0 };

  constructor(from: OutputPosition, sink: OutputSink) {
    const splitter = (stream: OutputStream) =>
      new LineSplitter((text, continues) => {
        this.seen[stream] += 1;
        if (this.seen[stream] > from[stream]) sink.line(stream, text, continues);
      });
    this.splitters = { stdout: splitter('stdout'), stderr: splitter('stderr') };
    this.demux = new FrameDemuxer((stream, bytes) => this.splitters[stream].write(bytes));
  }

  write(chunk: Buffer): void {
    this.demux.write(chunk);
  }

  /** Bytes of one stream, already taken out of their frames. */
  writeStream(stream: OutputStream, bytes: Buffer): void {
    this.splitters[stream].write(bytes);
  }

  /**
   * The output ended (the container exited): a last line without a newline is delivered. Not
   * called when reading stops early, so that a reader resuming later counts that line once.
   */
  end(): void {
    this.splitters.stdout.flush();
    this.splitters.stderr.flush();
  }
}

/**
 * Streams a live multiplexed output (a service's attach) into a sink as it arrives: nothing
 * is buffered beyond one unfinished line per stream.
 */
export function pipeOutput(output: NodeJS.ReadableStream, sink: OutputSink): void {
  const reader = new StepOutputReader({ stdout: 0, stderr: 0 }, sink);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    reader.end();
  };
  output.on('data', (chunk: Buffer) => reader.write(chunk));
  output.on('end', finish);
  output.on('close', finish);
  output.on('error', finish);
}

/**
 * Reads a container's log again and again (each read from the first byte, as the engine
 * serves it) and feeds each stream's bytes past those already fed, so the reader sees every
 * byte once. While the container runs, the last entry of a read may be one the engine was
 * still writing (its reader hands out a half-written last line as if whole): it is only fed
 * once a later read ends with the very same entry, or has more after it. `final` reads (the
 * container had exited before the read began) are taken whole.
 */
export class LogRereader {
  /** Payload bytes of each stream fed to the reader so far. */
  private readonly fed: Record<OutputStream, number> = { stdout: 0, stderr: 0 };
  /** The last entry of the previous read, held back. */
  private lastHeld: HeldFrame | undefined;

  constructor(private readonly reader: StepOutputReader) {}

  /** A parser for one read; call `done()` when the read's stream ended. */
  read(final: boolean): { write(chunk: Buffer): void; done(): void } {
    const skip = { ...this.fed };
    const at: Record<OutputStream, number> = { stdout: 0, stderr: 0 };
    let held: HeldFrame | undefined;
    const release = (frame: HeldFrame) => {
      const { stream, payload } = frame;
      const drop = Math.min(skip[stream], payload.length);
      skip[stream] -= drop;
      if (drop === payload.length) return;
      const rest = drop === 0 ? payload : payload.subarray(drop);
      this.fed[stream] += rest.length;
      this.reader.writeStream(stream, rest);
    };
    const frames = new FrameParser((stream, payload) => {
      if (held) release(held);
      held = { stream, start: at[stream], payload };
      at[stream] += payload.length;
    });
    return {
      write: (chunk) => frames.write(chunk),
      done: () => {
        const last = held;
        held = undefined;
        if (final) {
          if (last) release(last);
          this.lastHeld = undefined;
          this.reader.end();
          return;
        }
        if (last && this.lastHeld && sameFrame(last, this.lastHeld)) {
          release(last);
          this.lastHeld = undefined;
        } else {
          this.lastHeld = last;
        }
      },
    };
  }
}

interface HeldFrame {
  stream: OutputStream;
  /** Bytes of its stream before it. */
  start: number;
  payload: Buffer;
}

function sameFrame(a: HeldFrame, b: HeldFrame): boolean {
  return a.stream === b.stream && a.start === b.start && a.payload.equals(b.payload);
}

/** Whole frames of a multiplexed stream (a log entry each: small), for {@link LogRereader}. */
class FrameParser {
  private parts: Buffer[] = [];
  private readonly demuxer: FrameDemuxer;

  constructor(onFrame: (stream: OutputStream, payload: Buffer) => void) {
    this.demuxer = new FrameDemuxer(
      // Copied: the chunk's memory may be reused once this returns.
      (_stream, bytes) => this.parts.push(Buffer.from(bytes)),
      (stream) => {
        const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.parts = [];
        onFrame(stream, payload);
      },
    );
  }

  write(chunk: Buffer): void {
    this.demuxer.write(chunk);
  }
}
