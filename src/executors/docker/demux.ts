import type { OutputStream } from '../types.js';

/**
 * Splits the Docker Engine API's multiplexed attach/exec stream (no TTY) into stdout and
 * stderr bytes. Each frame is an 8-byte header – stream type (0 stdin, 1 stdout, 2 stderr),
 * three zero bytes, big-endian payload length – then the payload.
 *
 * Payload bytes are passed on as they arrive, sliced from the incoming chunk: a frame is never
 * collected whole, so a step printing one enormous frame costs no more memory than a small one.
 */
export class FrameDemuxer {
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  private stream: OutputStream = 'stdout';
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;

  constructor(
    private readonly onData: (stream: OutputStream, bytes: Buffer) => void,
    /** Called at the end of every frame (empty ones too): a frame of a container log is one entry. */
    private readonly onFrameEnd?: (stream: OutputStream) => void,
  ) {}

  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.onData(this.stream, chunk.subarray(pos, pos + take));
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) this.onFrameEnd?.(this.stream);
        continue;
      }
      const take = Math.min(8 - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      if (this.headerFill === 8) {
        this.headerFill = 0;
        this.stream = this.header[0] === 2 ? 'stderr' : 'stdout';
        this.remaining = this.header.readUInt32BE(4);
        if (this.remaining === 0) this.onFrameEnd?.(this.stream);
      }
    }
  }
}
