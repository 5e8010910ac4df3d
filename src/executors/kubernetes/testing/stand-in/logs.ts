/**
 * `pods/<name>/log` as the kubelet serves it: read the container's CRI log file (lines
 * `<RFC3339Nano> stdout|stderr F|P <text>`), strip the prefix, join `P` (partial) pieces with
 * the piece that ends the line, prefix each line with its time when `timestamps=true`, and with
 * `follow` keep reading while the container runs, ending once it terminated and the file is
 * drained.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LogOptions {
  follow: boolean;
  timestamps: boolean;
  /** Whole seconds since the epoch: lines before it are skipped. */
  sinceSeconds?: number;
  tailLines?: number;
  limitBytes?: number;
}

/** Where the container is, as far as its log is concerned. */
export type ContainerPhase = 'running' | 'terminated' | 'gone';

export interface LogSource {
  /** The log file, once the kubelet has one. */
  file(): string | undefined;
  phase(): ContainerPhase;
}

interface Message {
  time: string;
  text: Buffer;
  /** False for a trailing partial line. */
  newline: boolean;
}

/** How often a followed file is checked for growth and the container for its end. */
const FOLLOW_POLL_MS = 50;

/**
 * Writes the log to `write` until it is complete (or, with `follow`, the container ended and
 * the file is drained), `limitBytes` is reached, or `signal` aborts.
 */
export async function streamLog(
  source: LogSource,
  options: LogOptions,
  write: (chunk: Buffer) => void,
  signal: AbortSignal,
): Promise<void> {
  let handle: FileHandle | undefined;
  let offset = 0;
  let rest = Buffer.alloc(0);
  let pending: Message | undefined;
  let written = 0;
  let first = true;

  const emit = (messages: Message[]): boolean => {
    for (const m of messages) {
      if (options.sinceSeconds !== undefined && epochSeconds(m.time) < options.sinceSeconds) continue;
      const prefix = options.timestamps ? `${formatRFC3339Nano(m.time)} ` : '';
      let out = Buffer.concat([Buffer.from(prefix), m.text, Buffer.from(m.newline ? '\n' : '')]);
      if (options.limitBytes !== undefined && written + out.length >= options.limitBytes) {
        out = out.subarray(0, options.limitBytes - written);
        write(out);
        written += out.length;
        return false;
      }
      write(out);
      written += out.length;
    }
    return true;
  };

  /** Reads what the file has now; the complete messages in it. */
  const read = async (): Promise<Message[]> => {
    if (!handle) {
      const path = source.file();
      if (!path) return [];
      try {
        handle = await open(path, 'r');
      } catch {
        return [];
      }
    }
    const chunks: Buffer[] = [rest];
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      chunks.push(buf.subarray(0, bytesRead));
    }
    const data = Buffer.concat(chunks);
    const end = data.lastIndexOf(0x0a);
    rest = data.subarray(end + 1);
    const messages: Message[] = [];
    let start = 0;
    while (start <= end) {
      const nl = data.indexOf(0x0a, start);
      const line = data.subarray(start, nl);
      start = nl + 1;
      const parsed = parseCRILine(line);
      if (!parsed) continue;
      if (pending) {
        pending.text = Buffer.concat([pending.text, parsed.text]);
      } else {
        pending = { time: parsed.time, text: parsed.text, newline: false };
      }
      if (!parsed.partial) {
        pending.newline = true;
        messages.push(pending);
        pending = undefined;
      }
    }
    return messages;
  };

  try {
    for (;;) {
      if (signal.aborted) return;
      // Read the container's state before the file: a container that terminated has written
      // all of its log, so an empty read after that means the log is drained.
      const phase = source.phase();
      let messages = await read();
      if (first) {
        // tailLines counts the lines in the file when the request came, as the kubelet does.
        first = false;
        const tail = options.tailLines;
        if (tail !== undefined) messages = tail <= 0 ? [] : messages.slice(-tail);
      }
      if (messages.length > 0 && !emit(messages)) return;
      if (messages.length > 0) continue;
      if (!options.follow || phase !== 'running') {
        if (pending) emit([pending]);
        return;
      }
      await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await handle?.close();
  }
}

/** `2024-01-02T03:04:05.123456789Z stdout F text` → its parts; undefined if malformed. */
export function parseCRILine(line: Buffer): { time: string; partial: boolean; text: Buffer } | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const s3 = line.indexOf(0x20, s2 + 1);
  const tags = line.subarray(s2 + 1, s3 < 0 ? line.length : s3).toString();
  return {
    time: line.subarray(0, s1).toString(),
    partial: tags.split(':').includes('P'),
    text: s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1),
  };
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/;

/** Go's `time.RFC3339Nano` output: the fraction without trailing zeros. */
export function formatRFC3339Nano(time: string): string {
  const m = RFC3339.exec(time);
  if (!m) return time;
  const frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  return `${m[1]}${frac ? `.${frac}` : ''}${m[3]}`;
}

/** Whole seconds since the epoch of an RFC 3339 time (the fraction dropped). */
export function epochSeconds(time: string): number {
  const m = RFC3339.exec(time);
  if (!m) return Number.NaN;
  return Math.floor(Date.parse(`${m[1]}${m[3]}`) / 1000);
}

/**
 * `sinceTime` as the API server reads it: RFC 3339 (a fraction is accepted), then passed to the
 * kubelet at second precision. Undefined when it does not parse.
 */
export function parseSinceTime(value: string): number | undefined {
  const s = epochSeconds(value);
  return Number.isNaN(s) ? undefined : s;
}
