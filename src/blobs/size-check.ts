import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { BlobError } from './errors.js';

/** A body as a stream, whatever form the caller gave it in. */
export function toStream(body: Readable | Buffer | string): Readable {
  if (typeof body === 'string' || Buffer.isBuffer(body)) return Readable.from([Buffer.from(body)]);
  return body;
}

/**
 * Passes bytes through and fails the stream as soon as it runs past `expected`, or at its end
 * when it came up short: the put it feeds then fails instead of storing a wrong object.
 */
export class SizeCheck extends Transform {
  private seen = 0;

  constructor(
    private readonly expected: number | undefined,
    private readonly key: string,
  ) {
    super();
  }

  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expected !== undefined && this.seen > this.expected) {
      callback(this.mismatch('more'));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.expected !== undefined && this.seen !== this.expected ? this.mismatch('fewer') : null);
  }

  private mismatch(how: 'more' | 'fewer'): BlobError {
    return new BlobError(
      'size_mismatch',
      `${this.key}: the body has ${how} bytes than the announced ${this.expected ?? 0} (${how === 'more' ? 'at least ' : ''}${this.seen})`,
    );
  }
}
