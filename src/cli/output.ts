import type { Writable } from 'node:stream';

/**
 * Batches small writes into large ones: printing 200k log lines one `write` each costs more
 * than running the build. Flushed when the buffer grows large or on the next turn of the
 * event loop, so live output stays live.
 */
export class BufferedWriter {
  private chunks: string[] = [];
  private size = 0;
  private scheduled = false;

  constructor(
    private readonly out: Writable,
    private readonly limit = 64 * 1024,
  ) {}

  write(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    if (this.size >= this.limit) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    const text = this.chunks.join('');
    this.chunks = [];
    this.size = 0;
    this.out.write(text);
  }

  /** Resolves once everything written so far has been handed to the OS. */
  drain(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.out.write('', () => resolve()));
  }
}

const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92, 94];

/** ANSI styling that becomes a no-op when the output is not a terminal. */
export class Style {
  constructor(readonly enabled: boolean) {}

  private wrap(code: string, text: string): string {
    return this.enabled ? `\u001b[${code}m${text}\u001b[0m` : text;
  }
  bold = (text: string) => this.wrap('1', text);
  dim = (text: string) => this.wrap('2', text);
  red = (text: string) => this.wrap('31', text);
  green = (text: string) => this.wrap('32', text);
  yellow = (text: string) => this.wrap('33', text);
  /** A stable colour per index, so each step keeps its colour through the build. */
  nth = (index: number, text: string) => this.wrap(String(COLOURS[index % COLOURS.length]), text);
}
