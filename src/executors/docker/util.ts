/** Small helpers the docker executor's modules share: engine error words, aborts, names. */
import { ExecutorError } from '../types.js';
import type { EngineInfo } from './engine.js';

export const ABORTED = Symbol('aborted');

/** Waits for `promise` unless `signal` aborts first (the promise itself goes on). */
export async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return ABORTED;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export function destroyStream(stream: NodeJS.ReadableStream): void {
  const s = stream as NodeJS.ReadableStream & { destroy?: () => void };
  s.destroy?.();
}

/** 404 (or "no such …"): already gone, which is what removal wanted. */
export function isGone(error: unknown): boolean {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return status === 404 || /no such (container|volume|network|image)/i.test(errorText(error));
}

/** The engine did not answer at all (socket missing, refused, reset): not a refusal by the engine. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES'].includes(String(code));
}

/** The engine's own message, without dockerode's `(HTTP code …) … -` prefix noise. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const json = (error as { json?: { message?: unknown } | null }).json;
  if (json && typeof json.message === 'string') return json.message.trim();
  return error.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** A name fragment the engine accepts: `[a-zA-Z0-9_.-]`, bounded in length. */
export function slug(text: string, max: number): string {
  const cleaned = text.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[-.]+/, '');
  return (cleaned || 'x').slice(0, max);
}

/**
 * Runs an engine call while preparing a build, turning failures into ExecutorErrors with
 * context; an engine that does not answer is `engine_unavailable` whatever the call.
 */
export async function engineCall<T>(
  engine: EngineInfo | undefined,
  what: string,
  code: ExecutorError['code'],
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ExecutorError) throw error;
    const unreachable = isConnectionError(error);
    throw new ExecutorError(
      unreachable ? 'engine_unavailable' : code,
      `cannot ${what}: ${errorText(error)}${unreachable && engine ? ` (engine ${engine.address})` : ''}`,
      { cause: error },
    );
  }
}
