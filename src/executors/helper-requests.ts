import type { ChildProcess } from 'node:child_process';

/**
 * The request loop of Slipway's small helper processes (`node -e`, CommonJS): the local
 * executor's watcher and the server's git helper. Each reads one JSON request a line from its
 * stdin, written by the Slipway process that started it (never by a build), and hands it to
 * `handle`, a statement of the helper's source in which `req` is the request. A line that is
 * not JSON is skipped.
 */
export function requestLoopSource(handle: string): string {
  return String.raw`let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('error', () => {});
process.stdin.on('data', (d) => {
  input += d;
  let end;
  while ((end = input.indexOf('\n')) >= 0) {
    const line = input.slice(0, end);
    input = input.slice(end + 1);
    let req;
    try { req = JSON.parse(line); } catch { continue; }
    ${handle}
  }
});`;
}

/**
 * The parent's side of a helper's pipes: each line the helper writes on its stdout goes to
 * `hear`; `end` is called once the helper is gone ('close', not 'exit': what is still in the
 * pipe is read first); the helper never keeps this process alive. An unfinished line longer
 * than `maxLine` calls `overflow` (the helper is no longer trusted to answer).
 */
export function listenToHelper(
  child: ChildProcess,
  handlers: { hear: (line: string) => void; end: () => void; maxLine?: number; overflow?: () => void },
): void {
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    text += chunk;
    let end: number;
    while ((end = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, end);
      text = text.slice(end + 1);
      handlers.hear(line);
    }
    if (handlers.maxLine !== undefined && text.length > handlers.maxLine) handlers.overflow?.();
  });
  unrefHelper(child, () => handlers.end());
}

/** `end` once the child is gone; the child and its pipes never keep this process alive. */
export function unrefHelper(child: ChildProcess, end: (error?: Error) => void): void {
  child.once('close', () => end());
  child.once('error', (error) => end(error));
  child.stdin?.on('error', () => undefined);
  child.unref();
  unrefStream(child.stdin);
  unrefStream(child.stdout);
}

/** Lets a pipe of a child not keep the event loop alive (Node types pipes as plain streams). */
export function unrefStream(stream: unknown): void {
  (stream as { unref?: () => void } | null)?.unref?.();
}
