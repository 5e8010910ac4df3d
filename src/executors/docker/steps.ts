/**
 * Step containers: one per attempt, created and started by `start`, then followed by any
 * process through its id (the `StepRef`): the engine owns the container, its output (the
 * container's log, read from the first byte) and its exit, so all of them outlive the server
 * that started it. Containers are never auto-removed: `release` removes one once its exit was
 * read. A ref is only followed when the container's labels name the same build, step and
 * attempt (adoption): never a container of another build or installation.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type {
  BuildHandle,
  OutputPosition,
  OutputSink,
  StepErrorCode,
  StepEvents,
  StepExit,
  StepRef,
  StepSpec,
  StepStart,
} from '../types.js';
import { cacheHomeScript, cacheStepDir } from '../cache-home.js';
import { ExecutorError } from '../types.js';
import type { DockerBuild, DockerContext } from './build.js';
import { CACHES_MOUNT, cachesVolume } from './cache-files.js';
import type {
  ContainerCreateOptions,
  ContainerInspect,
  ContainerSummary,
  DockerContainer,
} from './client.js';
import { ENGINE_CHECK_MISSES, type EngineWatch } from './engine-watch.js';
import { LogRereader, StepOutputReader } from './output.js';
import { isStepContainer, LABELS, labelFilter } from './resources.js';
import { seedWorkspace } from './workspace.js';
import { ABORTED, delay, errorText, isConnectionError, isGone, raceAbort, slug } from './util.js';

export interface StepOptions {
  /** Run steps under the engine's init (tini / catatonit), so SIGTERM reaches the shell. */
  init: boolean;
  /** Between SIGTERM and SIGKILL. */
  stopGraceMs: number;
}

/** How long a container may take to end after SIGKILL before the engine counts as stuck. */
const KILL_BOUND_MS = 15_000;
/** Between two reads of a running container's log (more when a read takes long). */
const LOG_POLL_MS = 300;
/** Between two looks at a running container when nothing hints at its end. */
const SLOW_POLL_MS = 5_000;
/** Container states (Docker and Podman's compatible API) in which the exit code is final. */
const FINISHED_STATES = new Set(['exited', 'dead', 'stopped']);
/** What a container id or name can be; anything else in a ref is not ours. */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/**
 * The exit a finished container's inspect says, or undefined while it has not finished.
 * `OOMKilled` wins over the exit code: the kernel's SIGKILL is what ended it.
 */
export function exitOf(info: ContainerInspect): StepExit | undefined {
  const state = info.State;
  if (state.Running || !FINISHED_STATES.has(state.Status ?? '') || state.ExitCode === undefined) {
    return undefined;
  }
  if (state.OOMKilled) {
    return {
      kind: 'error',
      code: 'oom_killed',
      message: 'the step was killed for using more memory than its limit (out of memory)',
      exitCode: 137,
    };
  }
  return { kind: 'exited', exitCode: state.ExitCode };
}

type Adoption =
  | { ok: true; container: DockerContainer; info: ContainerInspect }
  | { ok: false; code: Extract<StepErrorCode, 'gone' | 'engine_unavailable'>; message: string };

/** Calls for one key (a container id), to wake who waits on it. */
class Bells {
  private readonly listeners = new Map<string, Set<() => void>>();

  on(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  ring(id: string): void {
    for (const listener of [...(this.listeners.get(id) ?? [])]) listener();
  }
}

/** A wake-up that is not lost when it rings while nobody listens: the next `next()` returns at once. */
class Doorbell {
  private rung = false;
  private wake: (() => void) | undefined;

  ring = (): void => {
    this.rung = true;
    this.wake?.();
  };

  /** Resolves on the next ring (or one that came since the last call), or after `ms`. */
  next(ms: number): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.rung = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = done;
    });
  }
}

export class StepContainers {
  /** A tail in this process saw the container finished: its exit is there to be read. */
  private readonly outputEnded = new Bells();
  /** A wait in this process saw the exit: a tail reads the log a last time now. */
  private readonly exitSeen = new Bells();
  /** A stop in this process gave up on a container the engine did not end, with why. */
  private readonly stuck = new Map<string, string>();
  private readonly stuckBells = new Bells();
  private readonly stopping = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: DockerContext,
    private readonly health: EngineWatch,
    private readonly options: StepOptions,
  ) {}

  /** The pending phase (image, seeding), then create + start; joins a start under way for the same attempt. */
  async start(
    build: DockerBuild,
    step: StepSpec,
    signal: AbortSignal,
    events: StepEvents,
  ): Promise<StepStart> {
    const key = `${step.key}#${step.attempt}`;
    const under = build.starting.get(key);
    if (under) return under;
    const starting = this.startOnce(build, step, signal, events);
    build.starting.set(key, starting);
    try {
      return await starting;
    } finally {
      build.starting.delete(key);
    }
  }

  async find(buildId: string, key: string, attempt: number): Promise<StepRef | undefined> {
    const found = await this.containerOf(buildId, key, attempt);
    if (!found || found.State === 'created') return undefined;
    return this.refOf(buildId, key, attempt, found.Id);
  }

  /**
   * Delivers the container's output after `from`: its log from the first byte, split exactly as
   * always, the first `from` pieces of each stream dropped. The log is read again while the
   * container runs (each read feeds only bytes not fed yet; reads are spaced by their own cost,
   * so a huge log is not re-read in a loop) and once more, whole, after it exited. Ends then,
   * when `signal` aborts, the engine is lost or the container is gone. Never rejects.
   */
  async tail(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) return;
    const reading = new AbortController();
    const bell = new Doorbell();
    const stop = () => {
      reading.abort();
      bell.ring();
    };
    const cleanups = [this.health.watch(stop), this.exitSeen.on(ref.id, bell.ring)];
    signal.addEventListener('abort', stop, { once: true });
    try {
      const rereader = new LogRereader(new StepOutputReader(from, sink));
      for (;;) {
        if (reading.signal.aborted) return;
        // Looked at before the read: a container that had exited then has its whole log in it.
        const adoption = await this.adopt(handle, ref);
        if (!adoption.ok) return;
        const final = exitOf(adoption.info) !== undefined;
        if (final) this.outputEnded.ring(ref.id);
        const began = Date.now();
        const read = rereader.read(final);
        if (!(await readLog(adoption.container, reading.signal, (chunk) => read.write(chunk)))) return;
        read.done();
        if (final) return;
        await bell.next(Math.max(LOG_POLL_MS, 3 * (Date.now() - began)));
      }
    } catch {
      // A sink that throws loses its own lines; tailing never rejects.
    } finally {
      for (const cleanup of cleanups) cleanup();
      signal.removeEventListener('abort', stop);
    }
  }

  /**
   * The container's exit once it ended. The engine's `wait` answers late on Podman (it polls),
   * so the end of the output read by a tail in this process is the cue to look at once.
   */
  async wait(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined> {
    if (signal.aborted) return undefined;
    const bell = new Doorbell();
    let lost: string | undefined;
    let soon = false;
    let waiting: Promise<unknown> | undefined;
    const cleanups = [
      this.health.watch((reason) => {
        lost = reason;
        bell.ring();
      }),
      this.outputEnded.on(ref.id, () => {
        soon = true;
        bell.ring();
      }),
      this.stuckBells.on(ref.id, bell.ring),
    ];
    signal.addEventListener('abort', bell.ring, { once: true });
    let unanswered = 0;
    try {
      for (let look = 0; ; look++) {
        if (signal.aborted) return undefined;
        if (lost !== undefined) {
          return {
            kind: 'error',
            code: 'engine_unavailable',
            message: `lost the container engine while the step ran: ${lost}`,
          };
        }
        const stuck = this.stuck.get(ref.id);
        if (stuck !== undefined) return { kind: 'error', code: 'engine_unavailable', message: stuck };
        const adoption = await this.adopt(handle, ref);
        if (!adoption.ok) {
          // The health check usually says first; an engine that answers pings but not this
          // container is as good as gone for the step.
          unanswered += 1;
          if (adoption.code === 'gone' || unanswered >= ENGINE_CHECK_MISSES) {
            return { kind: 'error', code: adoption.code, message: adoption.message };
          }
        } else {
          unanswered = 0;
          const exit = exitOf(adoption.info);
          if (exit) {
            this.exitSeen.ring(ref.id);
            return exit;
          }
          // A failed wait is not retried at once: the next look (or the health check) decides.
          waiting ??= adoption.container.wait().then(bell.ring, () => {
            waiting = undefined;
          });
        }
        await bell.next(soon ? Math.min(20 * 2 ** look, 1000) : SLOW_POLL_MS);
      }
    } finally {
      for (const cleanup of cleanups) cleanup();
      signal.removeEventListener('abort', bell.ring);
    }
  }

  /** SIGTERM, SIGKILL after the grace, then until it ended (bounded). Idempotent. */
  stop(handle: BuildHandle, ref: StepRef): Promise<void> {
    let stopping = this.stopping.get(ref.id);
    if (!stopping) {
      stopping = this.stopOnce(handle, ref).finally(() => this.stopping.delete(ref.id));
      this.stopping.set(ref.id, stopping);
    }
    return stopping;
  }

  /** Removes the container (its output and exit go with it). Idempotent. */
  async release(handle: BuildHandle, ref: StepRef): Promise<void> {
    const adoption = await this.adopt(handle, ref);
    if (!adoption.ok) {
      if (adoption.code === 'gone') return;
      throw new ExecutorError('engine_unavailable', adoption.message);
    }
    try {
      await adoption.container.remove({ force: true, v: true });
    } catch (error) {
      if (!isGone(error)) {
        throw new ExecutorError(
          'internal',
          `cannot remove the container of step ${ref.key}: ${errorText(error)}`,
          {
            cause: error,
          },
        );
      }
    }
    this.stuck.delete(ref.id);
  }

  private async startOnce(
    build: DockerBuild,
    step: StepSpec,
    signal: AbortSignal,
    events: StepEvents,
  ): Promise<StepStart> {
    const aborted: StepStart = { exit: { kind: 'aborted' } };
    if (signal.aborted) return aborted;
    let existing: ContainerSummary | undefined;
    try {
      existing = await this.containerOf(build.buildId, step.key, step.attempt);
    } catch (error) {
      return { exit: engineFault('cannot look for the step container', error) };
    }
    if (existing) {
      // Created by a process that died before starting it.
      if (existing.State === 'created') {
        try {
          await this.ctx.client.getContainer(existing.Id).start();
        } catch (error) {
          return { exit: engineFault('cannot start the step container', error) };
        }
      }
      return { ref: await this.refOf(build.buildId, step.key, step.attempt, existing.Id) };
    }

    const image = step.image ?? build.spec.image;
    if (!image) {
      return {
        exit: {
          kind: 'error',
          code: 'image_pull',
          message: `step "${step.key}" has no image: set image on the step or the pipeline`,
        },
      };
    }
    const problem = await raceAbort(
      this.ctx.images.ensure(
        build.images,
        image,
        events.pending ? (text) => events.pending?.(text) : undefined,
      ),
      signal,
    );
    if (problem === ABORTED) return aborted;
    if (problem) return { exit: { kind: 'error', ...problem } };
    build.seeded ??= seedWorkspace(this.ctx, build, image);
    try {
      if ((await raceAbort(build.seeded, signal)) === ABORTED) return aborted;
    } catch (error) {
      const code = error instanceof ExecutorError ? error.code : 'workspace';
      return {
        exit: {
          kind: 'error',
          code:
            code === 'engine_unavailable' ? code : code === 'image_unavailable' ? 'image_pull' : 'workspace',
          message: errorText(error),
        },
      };
    }

    let caches: string | undefined;
    if (step.cacheHome) {
      try {
        const made = await raceAbort(cachesVolume(this.ctx, build, image), signal);
        if (made === ABORTED) return aborted;
        caches = made;
      } catch (error) {
        const code = error instanceof ExecutorError ? error.code : 'workspace';
        return {
          exit: {
            kind: 'error',
            code: code === 'engine_unavailable' ? code : 'workspace',
            message: errorText(error),
          },
        };
      }
    }

    let container: DockerContainer;
    try {
      container = await this.ctx.client.createContainer(this.containerSpec(build, step, image, caches));
    } catch (error) {
      return { exit: engineFault('cannot create the step container', error) };
    }
    if (signal.aborted) {
      await container.remove({ force: true }).catch(() => undefined);
      return aborted;
    }
    try {
      await container.start();
    } catch (error) {
      await container.remove({ force: true }).catch(() => undefined);
      return { exit: engineFault('cannot start the step container', error) };
    }
    return {
      ref: {
        executor: 'docker',
        id: container.id,
        buildId: build.buildId,
        key: step.key,
        attempt: step.attempt,
        startedAt: Date.now(),
      },
    };
  }

  /** `caches`: the build's caches volume, for a step with `~/` cache paths (`step.cacheHome`). */
  private containerSpec(
    build: DockerBuild,
    step: StepSpec,
    image: string,
    caches: string | undefined,
  ): ContainerCreateOptions {
    // Secrets win over plain env of the same name. They are in the container's config, so
    // whoever can inspect containers on the engine can read them.
    const env = { ...step.env, ...step.secrets };
    const script = step.commands.join('\n');
    const home = caches && step.cacheHome ? { caches, save: step.cacheHome.save } : undefined;
    return {
      name: `${build.prefix}-${slug(step.key, 60)}-${step.attempt}-${randomBytes(2).toString('hex')}`,
      Image: image,
      // With `~/` cache paths the step's own shell restores and keeps them around the commands.
      Cmd: home
        ? [
            '/bin/sh',
            '-c',
            cacheHomeScript(script, { stepDir: cacheStepDir(CACHES_MOUNT, step.key), save: home.save }),
          ]
        : ['/bin/sh', '-e', '-c', script],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: this.ctx.workspace,
      Labels: build.labels('step', { [LABELS.step]: step.key, [LABELS.attempt]: String(step.attempt) }),
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      HostConfig: {
        Mounts: [
          { Type: 'volume', Source: build.volume ?? '', Target: this.ctx.workspace },
          ...(home ? [{ Type: 'volume' as const, Source: home.caches, Target: CACHES_MOUNT }] : []),
        ],
        ...(build.infra ? { NetworkMode: `container:${build.infra.id}` } : {}),
        Init: this.options.init,
      },
    };
  }

  /** The container of attempt `attempt` of step `key`, by labels (checked again here). */
  private async containerOf(
    buildId: string,
    key: string,
    attempt: number,
  ): Promise<ContainerSummary | undefined> {
    const containers = await this.ctx.client.listContainers({
      all: true,
      filters: labelFilter(
        `${LABELS.managed}=true`,
        `${LABELS.build}=${buildId}`,
        `${LABELS.step}=${key}`,
        `${LABELS.attempt}=${attempt}`,
      ),
    });
    const ours = containers.filter((c) => isStepContainer(c.Labels, buildId, key, attempt));
    return ours.find((c) => c.State !== 'created') ?? ours[0];
  }

  private async refOf(buildId: string, key: string, attempt: number, id: string): Promise<StepRef> {
    const info = await this.ctx.client
      .getContainer(id)
      .inspect()
      .catch(() => undefined);
    const started = Date.parse(info?.State.StartedAt ?? '');
    return {
      executor: 'docker',
      id,
      buildId,
      key,
      attempt,
      startedAt: Number.isFinite(started) && started > 0 ? started : Date.now(),
    };
  }

  /** The container a ref names, if its labels say it is that build's step and attempt. */
  private async adopt(handle: BuildHandle, ref: StepRef): Promise<Adoption> {
    const what = `the container of step ${ref.key} (${String(ref.id).slice(0, 12)})`;
    if (ref.executor !== 'docker' || ref.buildId !== handle.buildId || !CONTAINER_ID.test(String(ref.id))) {
      return {
        ok: false,
        code: 'gone',
        message: `${what} is not one of build ${handle.buildId}: not adopted`,
      };
    }
    const container = this.ctx.client.getContainer(ref.id);
    let info: ContainerInspect;
    try {
      info = await container.inspect();
    } catch (error) {
      if (isGone(error)) return { ok: false, code: 'gone', message: `${what} is gone: ${errorText(error)}` };
      return {
        ok: false,
        code: 'engine_unavailable',
        message: `cannot inspect ${what}: ${errorText(error)}`,
      };
    }
    if (!isStepContainer(info.Config?.Labels, handle.buildId, ref.key, ref.attempt)) {
      return {
        ok: false,
        code: 'gone',
        message: `${what} is not attempt ${ref.attempt} of that step of build ${handle.buildId} (its labels say otherwise): not adopted`,
      };
    }
    return { ok: true, container, info };
  }

  private async stopOnce(handle: BuildHandle, ref: StepRef): Promise<void> {
    const adoption = await this.adopt(handle, ref);
    if (!adoption.ok || !adoption.info.State.Running) return;
    const container = adoption.container;
    await container.kill({ signal: 'SIGTERM' }).catch(() => undefined);
    if (await this.endsWithin(container, this.options.stopGraceMs)) return;
    await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
    if (await this.endsWithin(container, KILL_BOUND_MS)) return;
    this.stuck.set(
      ref.id,
      `the engine did not end the container of step ${ref.key} within ${KILL_BOUND_MS / 1000} s of SIGKILL`,
    );
    this.stuckBells.ring(ref.id);
  }

  /** Whether the container stops running within `ms` (gone counts as ended). */
  private async endsWithin(container: DockerContainer, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (let look = 0; ; look++) {
      try {
        if (!(await container.inspect()).State.Running) return true;
      } catch (error) {
        if (isGone(error)) return true;
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await delay(Math.min(20 * 2 ** look, 250, left));
    }
  }
}

/** An engine call that failed while starting a step, as the step's error. */
function engineFault(what: string, error: unknown): StepExit {
  return {
    kind: 'error',
    code: isConnectionError(error) ? 'engine_unavailable' : 'internal',
    message: `container engine: ${what}: ${errorText(error)}`,
  };
}

/**
 * Streams a container's log so far into `onChunk`. Resolves true once all of it was read,
 * false when it could not be read to its end (gone, engine fault, `signal`).
 */
async function readLog(
  container: DockerContainer,
  signal: AbortSignal,
  onChunk: (chunk: Buffer) => void,
): Promise<boolean> {
  let stream: NodeJS.ReadableStream;
  try {
    const modem = container.modem;
    if (modem) {
      stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        modem.dial(
          {
            path: `/containers/${container.id}/logs?`,
            method: 'GET',
            isStream: true,
            abortSignal: signal,
            statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
            options: { follow: false, stdout: true, stderr: true },
          },
          (error, data) =>
            error ? reject(error instanceof Error ? error : new Error(errorText(error))) : resolve(data),
        ),
      );
    } else {
      const log = await container.logs({ follow: false, stdout: true, stderr: true, abortSignal: signal });
      stream = Buffer.isBuffer(log) ? Readable.from([log]) : log;
    }
  } catch {
    return false;
  }
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (complete: boolean) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (!complete) (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(complete);
    };
    const onAbort = () => finish(false);
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        onChunk(chunk);
      } catch {
        finish(false);
      }
    });
    stream.on('end', () => finish(true));
    stream.on('close', () => finish(false));
    stream.on('error', () => finish(false));
  });
}
