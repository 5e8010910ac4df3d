/**
 * Images: the pull policy, and pulls bounded in time whose failures come back as data (a
 * step's `image_pull` error, a prepare's `image_unavailable`), with the engine's message.
 */
import type { StepErrorCode } from '../types.js';
import type { DockerClient } from './client.js';
import { destroyStream, errorText, isConnectionError, isGone } from './util.js';

/** When images are pulled: only when not present (default), before every build, or never. */
export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

/** Why an image cannot be had: `image_pull`, or `engine_unavailable` when the engine did not answer. */
export interface ImageProblem {
  code: Extract<StepErrorCode, 'image_pull' | 'engine_unavailable'>;
  message: string;
}

/** One image's readiness within a build: shared by every step that needs it. */
interface ImageFetch {
  ready: Promise<ImageProblem | undefined>;
  pulling: boolean;
  /** Told once the engine starts pulling (the pending phase's `pulling image …`). */
  readonly onPull: Set<(text: string) => void>;
}

/** Per-build image cache: with policy `always` an image is pulled once per build, not per step. */
export type ImageCache = Map<string, ImageFetch>;

export class Images {
  constructor(
    private readonly client: DockerClient,
    readonly policy: PullPolicy,
    private readonly pullTimeoutMs: number,
  ) {
    if (!PULL_POLICIES.includes(policy)) {
      throw new RangeError(`pull policy must be one of ${PULL_POLICIES.join(', ')}, got "${String(policy)}"`);
    }
  }

  /**
   * Resolves to undefined once `image` is on the engine, or to why it cannot be. `onPull`
   * hears `pulling image "…"` when a pull is (or already was) under way for it. Never rejects.
   */
  ensure(
    cache: ImageCache,
    image: string,
    onPull?: (text: string) => void,
  ): Promise<ImageProblem | undefined> {
    let fetch = cache.get(image);
    if (!fetch) {
      const created: ImageFetch = { ready: Promise.resolve(undefined), pulling: false, onPull: new Set() };
      created.ready = this.fetch(image, () => {
        created.pulling = true;
        for (const listener of created.onPull) listener(`pulling image "${image}"`);
      });
      fetch = created;
      cache.set(image, fetch);
    }
    if (onPull) {
      if (fetch.pulling) onPull(`pulling image "${image}"`);
      else fetch.onPull.add(onPull);
      void fetch.ready.finally(() => fetch.onPull.delete(onPull));
    }
    return fetch.ready;
  }

  private async fetch(image: string, pulling: () => void): Promise<ImageProblem | undefined> {
    if (this.policy !== 'always') {
      try {
        await this.client.getImage(image).inspect();
        return undefined;
      } catch (error) {
        if (isConnectionError(error)) {
          return {
            code: 'engine_unavailable',
            message: `cannot inspect image "${image}": ${errorText(error)}`,
          };
        }
        if (!isGone(error))
          return { code: 'image_pull', message: `cannot inspect image "${image}": ${errorText(error)}` };
        if (this.policy === 'never') {
          return {
            code: 'image_pull',
            message: `image "${image}" is not present on the engine and the pull policy is "never"`,
          };
        }
      }
    }
    pulling();
    try {
      await this.pull(image);
    } catch (error) {
      return {
        code: isConnectionError(error) ? 'engine_unavailable' : 'image_pull',
        message: `cannot pull image "${image}": ${errorText(error)}`,
      };
    }
    return undefined;
  }

  /** Pulls an image, reading the progress stream for an in-band `{error}`; bounded in time. */
  private async pull(image: string): Promise<void> {
    const stream = await this.client.pull(image);
    await new Promise<void>((resolve, reject) => {
      let failure: string | undefined;
      let partial = '';
      const timer = setTimeout(() => {
        destroyStream(stream);
        reject(new Error(`no result within ${Math.round(this.pullTimeoutMs / 1000)} s`));
      }, this.pullTimeoutMs);
      stream.on('data', (chunk: Buffer | string) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = (lines.pop() ?? '').slice(-65536);
        for (const line of lines) failure = pullError(line) ?? failure;
      });
      stream.on('error', (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
      stream.on('end', () => {
        clearTimeout(timer);
        failure = pullError(partial) ?? failure;
        if (failure) reject(new Error(failure));
        else resolve();
      });
    });
  }
}

/** A pull-progress line's error message, if it is one. */
function pullError(line: string): string | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const event = JSON.parse(trimmed) as { error?: unknown; errorDetail?: { message?: unknown } };
    const message = event.errorDetail?.message ?? event.error;
    return typeof message === 'string' && message !== '' ? message : undefined;
  } catch {
    return undefined;
  }
}
