import { Readable } from 'node:stream';

/** One entry of a tar stream. `body` exists for regular files only. */
export interface TarEntry {
  /** Name as stored (PAX / GNU long names applied), without normalisation. */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  /** Target of a symlink or hard link. */
  linkName: string;
  /**
   * The file's bytes. Consume or destroy it before asking for the next entry; what is left
   * unread is skipped.
   */
  body?: Readable;
}

const BLOCK = 512;

/**
 * Reads a tar stream (ustar, with PAX extended headers and GNU long names, as Docker's and
 * Podman's archive endpoints write) entry by entry, streaming each file's bytes: nothing is
 * buffered beyond one block and the caller's current read.
 */
export async function* readTar(stream: NodeJS.ReadableStream): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>);
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const header = await reader.read(BLOCK);
      if (header === undefined || header.every((b) => b === 0)) return;
      if (!checksumOk(header)) throw new Error('tar: bad header checksum');
      const typeFlag = String.fromCharCode(header[156]!);
      const size = parseNumber(header.subarray(124, 136));
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (typeFlag === 'x' || typeFlag === 'g') {
        const records = parsePax((await reader.readExactly(padded)).subarray(0, size).toString('utf8'));
        if (typeFlag === 'g') globalPax = { ...globalPax, ...records };
        else pax = records;
        continue;
      }
      if (typeFlag === 'L' || typeFlag === 'K') {
        const text = (await reader.readExactly(padded))
          .subarray(0, size)
          .toString('utf8')
          .replace(/\0.*$/s, '');
        if (typeFlag === 'L') longName = text;
        else longLink = text;
        continue;
      }
      const attributes = { ...globalPax, ...pax };
      const ustarPrefix = header.subarray(257, 263).toString('latin1').startsWith('ustar')
        ? cString(header.subarray(345, 500))
        : '';
      const shortName = cString(header.subarray(0, 100));
      const name = attributes.path ?? longName ?? (ustarPrefix ? `${ustarPrefix}/${shortName}` : shortName);
      const linkName = attributes.linkpath ?? longLink ?? cString(header.subarray(157, 257));
      const entrySize = attributes.size !== undefined ? Number(attributes.size) : size;
      const entryPadded = Math.ceil(entrySize / BLOCK) * BLOCK;
      pax = {};
      longName = undefined;
      longLink = undefined;
      const type = entryType(typeFlag, name);
      if (type !== 'file') {
        await reader.skip(entryPadded);
        yield { name, type, size: entrySize, linkName };
        continue;
      }
      let left = entrySize;
      // The read in flight, if any: a reader that destroys the body mid-read must not race the skip below.
      let reading: Promise<unknown> = Promise.resolve();
      const body = Readable.from(
        (async function* () {
          while (left > 0) {
            const next = reader.readSome(left).then((chunk) => {
              if (chunk !== undefined) left -= chunk.length;
              return chunk;
            });
            reading = next;
            const chunk = await next;
            if (chunk === undefined) throw new Error('tar: the stream ended inside a file');
            yield chunk;
          }
        })(),
      );
      yield { name, type, size: entrySize, linkName, body };
      if (!body.destroyed && left > 0) body.destroy();
      await reading.catch(() => undefined);
      await reader.skip(left + (entryPadded - entrySize));
    }
  } finally {
    const s = stream as NodeJS.ReadableStream & { destroy?: () => void };
    s.destroy?.();
  }
}

function entryType(flag: string, name: string): TarEntry['type'] {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      // Old tars mark directories only by a trailing slash.
      return name.endsWith('/') ? 'directory' : 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}

/** Octal text, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = parseNumber(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === stored;
}

/** `<length> <key>=<value>\n` records. */
function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = Buffer.from(text, 'utf8');
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space === -1) break;
    const length = Number(rest.subarray(0, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= space) break;
    const record = rest
      .subarray(space + 1, length)
      .toString('utf8')
      .replace(/\n$/, '');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    rest = rest.subarray(length);
  }
  return out;
}

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer | string>) {}

  /** Exactly `n` bytes, or undefined at a clean end of stream before any of them. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buffer.length < n && (await this.fill()));
    if (this.buffer.length === 0 && n > 0) return undefined;
    if (this.buffer.length < n) throw new Error('tar: the stream ended inside a header');
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  async readExactly(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    const out = await this.read(n);
    if (out === undefined) throw new Error('tar: the stream ended early');
    return out;
  }

  /** Between 1 and `max` bytes, or undefined at the end of the stream. */
  async readSome(max: number): Promise<Buffer | undefined> {
    if (this.buffer.length === 0 && !(await this.fill())) return undefined;
    const out = this.buffer.subarray(0, Math.min(max, this.buffer.length));
    this.buffer = this.buffer.subarray(out.length);
    return Buffer.from(out);
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const chunk = await this.readSome(left);
      if (chunk === undefined) throw new Error('tar: the stream ended early');
      left -= chunk.length;
    }
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.source.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    return true;
  }
}
