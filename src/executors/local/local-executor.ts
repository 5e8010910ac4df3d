import { realpathSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ExecutorError,
  type HostDirs,
  type BuildHandle,
  type BuildSpec,
  type Executor,
  type ExecutorResource,
  type OutputPosition,
  type OutputSink,
  type StepExit,
  type StepRef,
  type StepSpec,
  type StepStart,
  type WorkspaceEntry,
} from '../types.js';
import {
  buildRootName,
  isCode,
  readMarker,
  removeTree,
  scanBuildRoots,
  writeMarker,
  type BuildMarker,
} from './build-dirs.js';
import type { BuildUser } from './build-user.js';
import { collectLocalFiles } from './collect-files.js';
import { DEFAULT_INHERITED_ENV, stepEnvironment, type InheritEnv } from './host-env.js';
import {
  forgetGroup,
  killLeftoverGroups,
  liveGroups,
  pidMark,
  recordGroup,
  type PidMark,
} from './leftovers.js';
import { killGroup, spawnGroup, type ProcessGroup } from './process-group.js';
import { checkServices, waitForPort } from './services.js';
import {
  RECORD_FILE,
  STEPS_DIR,
  STEP_FILES,
  isSameProcess,
  launcherAlive,
  readExit,
  readRecord,
  stepAlive,
  stepDirName,
  type StepRecord,
} from './step-files.js';
import { tailFiles } from './step-output.js';
import { StepWatcher, type StepEnd } from './watcher.js';
import { chownTree } from './chown-tree.js';
import { copySeed, listSeed, WHOLE_DIRECTORY, type SourceSeed } from '../workspace-seed.js';

export interface LocalExecutorOptions {
  /** Use this directory as every build's workspace instead of a temp dir; never removed. */
  workdir?: string;
  /** Where build roots (`slipway-<build>-…`) are created; default `os.tmpdir()`. */
  tmpRoot?: string;
  /** Between SIGTERM and SIGKILL when a step is aborted or services are stopped; default 2000. */
  killGraceMs?: number;
  /** How long a service's `waitFor` port may take to accept connections; default 60000. */
  serviceTimeoutMs?: number;
  /** How long to wait for a service's output pipes held open by escaped grandchildren; default 2000. */
  outputDrainMs?: number;
  /** Host variables steps and services inherit; default {@link DEFAULT_INHERITED_ENV}. */
  inheritEnv?: InheritEnv;
  /**
   * Run steps and services as this user (the server's build user, see build-user.ts) instead
   * of this process's user, with no supplementary groups. The build root stays this process's
   * (0711: the user may pass, not list), its marker and process records with it; the
   * workspace (a moved clone included) and a per-build HOME (`<root>/home`) are handed to the
   * user (0700); steps get that HOME, USER and LOGNAME. Needs root, and a `tmpRoot` the user
   * may pass through (the server makes its workspace root 0711).
   */
  runAs?: BuildUser;
  /**
   * How long the steps' watcher (watcher.ts) is kept once no build is left, so that a stream of
   * builds starts it once; default 3000. It ends anyway when this process does.
   */
  watcherIdleMs?: number;
}

/** A service: a process group of this process, its output piped to it (never re-attached). */
interface RunningProcess {
  proc: ProcessGroup;
  service: string;
}

interface LocalBuild {
  root: string;
  workspace: string;
  /** HOME of steps that run as another user; undefined: they keep the host's. */
  home?: string;
  project: string;
  /** Services started by this process. */
  processes: Set<RunningProcess>;
  /** The pid counter when this process prepared the build (none when it resumed it). */
  pidMark?: PidMark | undefined;
  /**
   * Step directories by attempt and key, and the host part of the steps' environment: worked
   * out once per build, not for every call about every step (a hash, a walk of the host env).
   */
  stepDirs: Map<string, string>;
  baseEnv?: Record<string, string>;
}

/**
 * A step this process started: its record as the watcher answered it, and its end as the
 * watcher tells it (`{done, exit}`), so that waiting, tailing and releasing it read no file and
 * poll nothing. A step adopted from an earlier process has none: its files tell, polled.
 */
interface OwnStep {
  record: StepRecord;
  ended: Promise<StepEnd>;
  /** Set once `ended` resolved; `exit` undefined: the watcher ended without telling one. */
  end?: { exit: StepExit | undefined };
}

const DISCARD: OutputSink = { line() {} };

/**
 * Runs steps as host processes (`/bin/sh -e`) in a per-build workspace directory. A step
 * can do what its user can do on the host (files, network, processes): with `runAs` that is
 * the server's unprivileged build user, else the user of this process (`slipway run`).
 *
 * Each step and service is the leader of its own process group, so cancel and cleanup reach
 * everything it started (except what deliberately leaves the group, e.g. with `setsid`).
 *
 * Steps outlive this process: they are started by a detached watcher (watcher.ts, one for all
 * steps of this executor) that has them write their output to files and records their pids
 * and exit codes in the build root (step-files.ts), so a later process resumes the build
 * (`resumeBuild`), finds the step, tails it from a position and reads its exit. Services are not: they are processes of this one,
 * their output piped to it, and a build with services cannot be resumed.
 */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly tmpRoot: string;
  private readonly workdir: string | undefined;
  private readonly killGraceMs: number;
  private readonly serviceTimeoutMs: number;
  private readonly drainMs: number;
  private readonly inheritEnv: InheritEnv;
  private readonly runAs: BuildUser | undefined;
  private readonly builds = new Map<string, LocalBuild>();
  /** Starts in progress, by step directory: a second startStep of the same attempt joins it. */
  private readonly launches = new Map<string, Promise<StepStart>>();
  /** The steps this process started, by step directory, until released or torn down. */
  private readonly own = new Map<string, OwnStep>();
  /**
   * Released step directories the watcher is still removing, by directory: a later call about
   * the same directory, and the build's teardown, wait for it.
   */
  private readonly releasing = new Map<string, Promise<void>>();
  private readonly watcher: StepWatcher;
  private scriptSeq = 0;

  constructor(options: LocalExecutorOptions = {}) {
    // Real paths, so that `pwd` in a step prints exactly handle.workspace.
    this.tmpRoot = realPath(options.tmpRoot ?? tmpdir());
    this.workdir = options.workdir === undefined ? undefined : realPath(options.workdir);
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.serviceTimeoutMs = options.serviceTimeoutMs ?? 60_000;
    this.drainMs = options.outputDrainMs ?? 2000;
    this.inheritEnv = options.inheritEnv ?? DEFAULT_INHERITED_ENV;
    this.runAs = options.runAs;
    this.watcher = new StepWatcher(options.watcherIdleMs ?? 3000);
  }

  /** The user steps run as, when it is not this process's. */
  get buildUser(): BuildUser | undefined {
    return this.runAs;
  }

  workspacePath(buildId: string): string {
    return this.workdir ?? join(this.rootOf(buildId), 'workspace');
  }

  async prepare(build: BuildSpec, signal?: AbortSignal): Promise<BuildHandle> {
    signal?.throwIfAborted();
    checkServices(build.services);
    if (this.builds.has(build.buildId)) {
      throw new ExecutorError('workspace', `build ${build.buildId} is already prepared`);
    }
    const root = this.rootOf(build.buildId);
    const workspace = this.workspacePath(build.buildId);
    const state: LocalBuild = {
      root,
      workspace,
      project: build.project,
      processes: new Set(),
      stepDirs: new Map(),
      ...(this.runAs ? { home: join(root, 'home') } : {}),
      // Before anything of the build can start: what it starts gets a later pid.
      pidMark: pidMark(),
    };
    // Registered before the first await: a concurrent prepare of the same id is refused.
    this.builds.set(build.buildId, state);
    // Boots while the workspace is made, so that the first step does not wait for it.
    this.watcher.warm();
    try {
      await mkdir(this.tmpRoot, { recursive: true });
      // A root left by a crashed run of the same build id is stale by now.
      await removeTree(root);
      await mkdir(root, { mode: 0o700 });
      // The build user passes through to its workspace, home and scripts, but cannot list
      // or change the root (the marker and process records are the server's).
      const scripts = join(root, 'scripts');
      await Promise.all([
        this.runAs ? chmod(root, 0o711) : undefined,
        writeMarker(root, {
          buildId: build.buildId,
          project: build.project,
          branch: build.branch,
          workspace,
          pid: process.pid,
          createdAt: new Date().toISOString(),
        }),
        mkdir(scripts, { mode: 0o711 }).then(() => (this.runAs ? chmod(scripts, 0o711) : undefined)),
        mkdir(join(root, STEPS_DIR), { mode: 0o700 }),
        mkdir(workspace, { recursive: true }),
      ]);
    } catch (err) {
      throw new ExecutorError('workspace', `could not create the workspace ${workspace}: ${message(err)}`, {
        cause: err,
      });
    }
    if (build.sourceDir !== undefined && realPath(build.sourceDir) !== workspace) {
      signal?.throwIfAborted();
      try {
        const seed = build.sourceSeed ?? WHOLE_DIRECTORY;
        // A fixed workdir is the user's directory: never replaced by a moved one.
        const movable = seed.movable === true && this.workdir === undefined;
        await seedWorkspace(build.sourceDir, workspace, { ...seed, movable }, signal);
      } catch (err) {
        throw new ExecutorError(
          'workspace',
          `could not copy ${build.sourceDir} into the workspace: ${message(err)}`,
          {
            cause: err,
          },
        );
      }
    }
    if (this.runAs) await this.handOver(state, this.runAs);
    await this.startServices(build, state, signal);
    return { buildId: build.buildId, workspace };
  }

  /**
   * Re-finds a build an earlier process prepared: its marker and workspace are still on disk.
   * Its steps are found again from their records (step-files.ts). A build with services
   * cannot be re-attached: they were processes of the server that stopped, their output piped
   * to it.
   */
  async resumeBuild(build: BuildSpec): Promise<BuildHandle> {
    const known = this.builds.get(build.buildId);
    if (known) return { buildId: build.buildId, workspace: known.workspace };
    const root = this.rootOf(build.buildId);
    const marker = await readMarker(root);
    if (marker?.buildId !== build.buildId) {
      throw new ExecutorError('gone', `the files of build ${build.buildId} are gone: ${root} holds no build`);
    }
    const workspace = this.workspacePath(build.buildId);
    if (!(await isDirectory(workspace))) {
      throw new ExecutorError('gone', `the workspace ${workspace} of build ${build.buildId} is gone`);
    }
    if (build.services.length > 0) {
      const names = build.services.map((s) => s.name).join(', ');
      throw new ExecutorError(
        'gone',
        `the local executor cannot re-attach build ${build.buildId}: its services (${names}) were ` +
          'processes of the server that stopped, with their output piped to it',
      );
    }
    this.builds.set(build.buildId, {
      root,
      workspace,
      project: marker.project,
      processes: new Set(),
      stepDirs: new Map(),
      ...(this.runAs ? { home: join(root, 'home') } : {}),
    });
    return { buildId: build.buildId, workspace };
  }

  /**
   * Asks the watcher (watcher.ts) to start the step's shell and record it; resolves once
   * `record.json` is written. Idempotent per (key, attempt): the step directory is created
   * exclusively, and an existing one yields the step it records.
   */
  async startStep(handle: BuildHandle, step: StepSpec, signal: AbortSignal): Promise<StepStart> {
    if (signal.aborted) return { exit: { kind: 'aborted' } };
    const state = this.builds.get(handle.buildId);
    if (!state) {
      return {
        exit: {
          kind: 'error',
          code: 'workspace',
          message: `build ${handle.buildId} is not prepared on this executor`,
        },
      };
    }
    const dir = this.stepDir(handle.buildId, step.key, step.attempt);
    const inFlight = this.launches.get(dir);
    if (inFlight) return inFlight;
    await this.releasing.get(dir);
    const start = this.launch(state, handle.buildId, step, dir);
    this.launches.set(dir, start);
    try {
      return await start;
    } finally {
      this.launches.delete(dir);
    }
  }

  async findStep(handle: BuildHandle, key: string, attempt: number): Promise<StepRef | undefined> {
    const dir = this.stepDir(handle.buildId, key, attempt);
    const inFlight = this.launches.get(dir);
    if (inFlight) {
      const start = await inFlight;
      return 'ref' in start ? start.ref : undefined;
    }
    await this.releasing.get(dir);
    const found = await settleLaunch(dir);
    if (found.kind !== 'record') return undefined;
    const { record } = found;
    if (record.buildId !== handle.buildId || record.key !== key || record.attempt !== attempt)
      return undefined;
    return refOf(dir, record);
  }

  async tailStep(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      const found = await this.adopt(handle, ref);
      if (!found) return;
      const { dir, record } = found;
      const own = this.own.get(dir);
      await tailFiles(dir, from, sink, signal, () => this.hasEnded(dir, record), own?.ended);
    } catch {
      // Never rejects: an unreadable file ends the tail; waitStep tells what happened.
    }
  }

  async waitStep(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined> {
    const found = await this.adopt(handle, ref);
    if (!found) {
      return { kind: 'error', code: 'gone', message: `step ${ref.key} (${ref.id}) is gone: no record of it` };
    }
    const { dir, record } = found;
    const own = this.own.get(dir);
    if (own) {
      // The watcher tells the end: nothing to read or poll until then.
      if (own.end === undefined) {
        if (signal.aborted) return undefined;
        await untilSettledOrAborted(own.ended, signal);
      }
      if (own.end?.exit) return own.end.exit;
      if (own.end === undefined) return undefined;
      // The watcher ended without telling: what is on disk tells, as for an adopted step.
    }
    const wake = own?.ended;
    let idle = FIRST_POLL_MS;
    for (;;) {
      const exit = await readExit(dir);
      if (exit) return exit;
      if (signal.aborted) return undefined;
      if (!(await isRunning(record))) {
        // The watcher may have written the exit just before it ended.
        const late = await readExit(dir);
        if (late) return late;
        return {
          kind: 'error',
          code: 'gone',
          message:
            `step ${ref.key} (process group ${record.pgid}) is gone: it recorded no exit and no process ` +
            'of it runs (its watcher was killed, or the host restarted)',
        };
      }
      await pause(idle, signal, wake);
      idle = Math.min(MAX_POLL_MS, idle * 2);
    }
  }

  /**
   * SIGTERM to the step's group, SIGKILL after the grace; resolves once its exit is recorded
   * (or nothing of it runs). Only a shell whose pid still has the recorded start time is
   * signalled: a recycled pid never is.
   */
  async stopStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    const found = await this.adopt(handle, ref);
    if (found) await this.stopRecorded(found.dir, found.record);
  }

  async releaseStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    if (ref.executor !== 'local' || ref.buildId !== handle.buildId) return;
    const dir = this.stepDir(handle.buildId, ref.key, ref.attempt);
    if (ref.id !== join(dir, RECORD_FILE)) return;
    const found = await this.adopt(handle, ref);
    const told = this.own.get(dir)?.end?.exit !== undefined;
    if (found && !told) {
      // Releasing a step that still runs would leave it writing to removed files.
      await this.stopRecorded(found.dir, found.record);
      // A step an older watcher started has a pid file of its group.
      await forgetGroup(this.rootOf(handle.buildId), found.record.pgid).catch(() => undefined);
    }
    this.own.delete(dir);
    if (!told) {
      await removeStepDir(dir);
      await rm(this.stepScript(this.rootOf(handle.buildId), dir), { force: true });
      return;
    }
    // The watcher that told the end removed the script before it wrote the exit, and removes the
    // directory now; this process does not wait for it (a line to the watcher instead of six
    // file calls, their thread-pool round trips on the path to the next step): what asks about
    // the directory later waits for it, and so does the build's teardown.
    if (this.releasing.has(dir)) return;
    const removed = this.watcher
      .release(dir)
      .then((done) => (done ? undefined : removeStepDir(dir)))
      .catch(() => undefined)
      .finally(() => this.releasing.delete(dir));
    this.releasing.set(dir, removed);
  }

  private async launch(state: LocalBuild, buildId: string, step: StepSpec, dir: string): Promise<StepStart> {
    const script = this.stepScript(state.root, dir);
    for (let again = false; ; again = true) {
      // The watcher makes the step directory and takes it (`launch`, exclusively): one start
      // per attempt, whoever asks.
      const { answer, ended } = await this.watcher.launch({
        dir,
        script,
        commands: step.commands.join('\n') + '\n',
        cwd: state.workspace,
        env: this.env(state, { ...step.env, ...step.secrets }),
        ...this.identity(),
        record: { buildId, key: step.key, attempt: step.attempt },
      });
      if (answer.kind === 'started') {
        this.remember(dir, answer.record, ended);
        return { ref: refOf(dir, answer.record) };
      }
      // Not started here, or no answer (the watcher ended first): what is on disk tells.
      const found = await settleLaunch(dir);
      if (found.kind === 'record') {
        const { record } = found;
        if (record.buildId !== buildId || record.key !== step.key || record.attempt !== step.attempt) {
          return {
            exit: {
              kind: 'error',
              code: 'internal',
              message: `the step directory ${dir} records another step`,
            },
          };
        }
        // Started before (by this process or an earlier one) or by another launch at the same
        // time (`taken`: its watcher, not ours, tells the end): that start stands, followed from
        // its files as an adopted one.
        return { ref: refOf(dir, record) };
      }
      // An earlier launch of this attempt failed: its exit stands.
      if (found.kind === 'exit' && answer.kind === 'taken') return { exit: found.exit };
      if (found.kind === 'none' && answer.kind === 'taken' && !again) {
        // Its launcher died before it recorded the step: nothing runs. Started again, once.
        await removeTree(dir);
        continue;
      }
      const exit: StepExit =
        found.kind === 'exit'
          ? found.exit
          : {
              kind: 'error',
              code: 'internal',
              message: `the step watcher did not start the step in ${dir} (its directory is gone, or the watcher ended)`,
            };
      // A start that failed leaves nothing: the attempt may be started again.
      await removeTree(dir).catch(() => undefined);
      await rm(script, { force: true });
      return { exit };
    }
  }

  /** The step directory a ref names, with its record, only if both are this build's step and attempt. */
  private async adopt(
    handle: BuildHandle,
    ref: StepRef,
  ): Promise<{ dir: string; record: StepRecord } | undefined> {
    if (ref.executor !== 'local' || ref.buildId !== handle.buildId) return undefined;
    const dir = this.stepDir(handle.buildId, ref.key, ref.attempt);
    // A ref is input (it comes back from the database): it may only ever name this path.
    if (ref.id !== join(dir, RECORD_FILE)) return undefined;
    await this.releasing.get(dir);
    const record = this.own.get(dir)?.record ?? (await readRecord(dir));
    if (record?.buildId !== ref.buildId || record.key !== ref.key || record.attempt !== ref.attempt) {
      return undefined;
    }
    return { dir, record };
  }

  private async stopRecorded(dir: string, record: StepRecord): Promise<void> {
    if (this.own.get(dir)?.end?.exit !== undefined || (await readExit(dir)) !== undefined) return;
    const ended = (): Promise<boolean> => this.hasEnded(dir, record);
    await signalStep(record, 'SIGTERM');
    const wake = this.own.get(dir)?.ended;
    const deadline = Date.now() + this.killGraceMs;
    let idle = FIRST_POLL_MS;
    while (!(await ended())) {
      if (Date.now() >= deadline) {
        await signalStep(record, 'SIGKILL');
        break;
      }
      await pause(Math.min(idle, Math.max(1, deadline - Date.now())), undefined, wake);
      idle = Math.min(MAX_POLL_MS, idle * 2);
    }
    while (!(await ended())) {
      await pause(idle, undefined, wake);
      idle = Math.min(MAX_POLL_MS, idle * 2);
    }
  }

  /** Stops every recorded step of a build root that still runs, whoever started it. */
  private async stopSteps(root: string, buildId: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(join(root, STEPS_DIR));
    } catch {
      return;
    }
    await Promise.all(
      names.map(async (name) => {
        const dir = join(root, STEPS_DIR, name);
        // Its watcher told its end: nothing of its group runs (the watcher killed it).
        if (this.own.get(dir)?.end?.exit !== undefined) return;
        const record = await readRecord(dir);
        if (record?.buildId === buildId) await this.stopRecorded(dir, record);
      }),
    );
  }

  /** Running steps recorded under a build root, as resources. */
  private async stepProcesses(root: string, marker: BuildMarker): Promise<ExecutorResource[]> {
    let names: string[];
    try {
      names = await readdir(join(root, STEPS_DIR));
    } catch {
      return [];
    }
    const found = await Promise.all(
      names.map(async (name): Promise<ExecutorResource | undefined> => {
        const dir = join(root, STEPS_DIR, name);
        const record = await readRecord(dir);
        if (record?.buildId !== marker.buildId || (await readExit(dir)) !== undefined) return undefined;
        if (!(await isSameProcess(record.pid, record.startTime))) return undefined;
        return {
          kind: 'process',
          id: String(record.pgid),
          buildId: marker.buildId,
          project: marker.project,
          step: record.key,
          running: true,
        };
      }),
    );
    return found.filter((r) => r !== undefined);
  }

  private remember(dir: string, record: StepRecord, ended: Promise<StepEnd>): void {
    const own: OwnStep = { record, ended };
    this.own.set(dir, own);
    void ended.then((exit) => (own.end = { exit }));
  }

  /**
   * Whether no more output can come: the watcher told the end, or (a step adopted from an
   * earlier process, or one whose watcher ended without telling) its exit is recorded or
   * nothing of it runs.
   */
  private async hasEnded(dir: string, record: StepRecord): Promise<boolean> {
    const own = this.own.get(dir);
    if (own?.end?.exit !== undefined) return true;
    if (own !== undefined && own.end === undefined) return false;
    return (await readExit(dir)) !== undefined || !(await isRunning(record));
  }

  private stepDir(buildId: string, key: string, attempt: number): string {
    const known = this.builds.get(buildId)?.stepDirs;
    const id = `${attempt}\0${key}`;
    let dir = known?.get(id);
    if (dir === undefined) {
      dir = join(this.rootOf(buildId), STEPS_DIR, stepDirName(key, attempt));
      known?.set(id, dir);
    }
    return dir;
  }

  private stepScript(root: string, dir: string): string {
    return join(root, 'scripts', `step-${basename(dir)}.sh`);
  }

  collectFiles(
    handle: BuildHandle,
    patterns: readonly string[],
    signal?: AbortSignal,
  ): AsyncIterable<WorkspaceEntry> {
    const workspace = this.builds.get(handle.buildId)?.workspace ?? handle.workspace;
    return collectLocalFiles(workspace, patterns, signal);
  }

  cacheRoots(handle: BuildHandle): HostDirs {
    const state = this.builds.get(handle.buildId);
    // Steps that run as the build user have the build's own HOME; else this process's.
    const home = this.runAs ? state?.home : (process.env.HOME ?? homedir());
    return {
      workspace: state?.workspace ?? handle.workspace,
      ...(home === undefined ? {} : { home }),
      ...(this.runAs ? { owner: { uid: this.runAs.uid, gid: this.runAs.gid } } : {}),
    };
  }

  async destroy(handle: BuildHandle): Promise<void> {
    await this.teardown(handle.buildId);
  }

  /**
   * Running steps of every build root under tmpRoot, from their records (`id` = pgid, `step` =
   * key), whoever started them; services of this process (`step` = `service:<name>`) and other
   * live process groups of builds it does not run; and every build root with a marker (`id` =
   * workspace path; `running` only if this process has the build prepared or resumed).
   */
  async listResources(): Promise<ExecutorResource[]> {
    const out: ExecutorResource[] = [];
    for (const [buildId, state] of this.builds) {
      for (const { proc, service } of state.processes) {
        if (proc.pid === undefined) continue;
        out.push({
          kind: 'process',
          id: String(proc.pid),
          buildId,
          project: state.project,
          step: `service:${service}`,
          running: true,
        });
      }
    }
    for (const { root, marker } of await scanBuildRoots(this.tmpRoot)) {
      const steps = await this.stepProcesses(root, marker);
      out.push(...steps);
      if (!this.builds.has(marker.buildId)) {
        const known = new Set(steps.map((s) => s.id));
        for (const pgid of await liveGroups(root)) {
          if (known.has(String(pgid))) continue;
          out.push({
            kind: 'process',
            id: String(pgid),
            buildId: marker.buildId,
            project: marker.project,
            running: true,
          });
        }
      }
      out.push({
        kind: 'workspace',
        id: marker.workspace,
        buildId: marker.buildId,
        project: marker.project,
        // In use only if this process runs the build; otherwise a leftover of a crash.
        running: this.builds.has(marker.buildId),
      });
    }
    return out;
  }

  async removeResources(buildId: string): Promise<void> {
    await this.teardown(buildId);
  }

  /**
   * Stops the build's steps (recorded on disk, whoever started them) and services (grace, then
   * kill), whatever else still runs of it, and removes its root. Idempotent.
   */
  private async teardown(buildId: string): Promise<void> {
    const state = this.builds.get(buildId);
    const root = this.rootOf(buildId);
    await Promise.all([...this.releasing].filter(([dir]) => dir.startsWith(`${root}/`)).map(([, p]) => p));
    await Promise.all([
      this.stopSteps(root, buildId),
      ...[...(state?.processes ?? [])].map(({ proc }) => proc.terminate(this.killGraceMs)),
    ]);
    this.builds.delete(buildId);
    if (this.builds.size === 0) this.watcher.idle();
    for (const dir of this.own.keys()) if (dir.startsWith(`${root}/`)) this.own.delete(dir);
    // What no record names: a step whose record was never written, a leftover of a process
    // that died with services running.
    await killLeftoverGroups(root, state?.pidMark);
    try {
      await removeTree(this.rootOf(buildId));
    } catch (err) {
      throw new ExecutorError(
        'workspace',
        `could not remove the files of build ${buildId}: ${message(err)}`,
        { cause: err },
      );
    }
  }

  private async startServices(build: BuildSpec, state: LocalBuild, signal?: AbortSignal): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const service of build.services) {
      signal?.throwIfAborted();
      let script: string;
      try {
        script = await this.writeScript(state, `service-${service.name}`, service.commands ?? []);
      } catch (err) {
        throw new ExecutorError(
          'service',
          `could not write the script of service "${service.name}": ${message(err)}`,
          {
            cause: err,
          },
        );
      }
      const sink = build.serviceSink?.(service.name) ?? DISCARD;
      const proc = spawnGroup({
        script,
        cwd: state.workspace,
        env: this.env(state, service.env),
        sink,
        drainMs: this.drainMs,
        ...this.identity(),
      });
      const entry: RunningProcess = { proc, service: service.name };
      state.processes.add(entry);
      await recordGroup(state.root, proc.pid).catch(() => undefined);
      void proc.done.then(() => state.processes.delete(entry));
      if (service.waitFor !== undefined) {
        waits.push(waitForPort(service.name, service.waitFor, proc, this.serviceTimeoutMs, signal));
      }
    }
    // All services start before any wait, so slow ones come up side by side.
    await Promise.all(waits);
  }

  private async writeScript(state: LocalBuild, label: string, commands: string[]): Promise<string> {
    const file = join(
      state.root,
      'scripts',
      `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-${++this.scriptSeq}.sh`,
    );
    await writeFile(file, commands.join('\n') + '\n', { mode: 0o600 });
    if (this.runAs) await chown(file, this.runAs.uid, this.runAs.gid);
    return file;
  }

  private env(state: LocalBuild, own: Record<string, string>): Record<string, string> {
    if (state.baseEnv === undefined) {
      const user = this.runAs;
      const extra: Record<string, string> =
        user && state.home !== undefined
          ? { PWD: state.workspace, HOME: state.home, USER: user.name, LOGNAME: user.name }
          : { PWD: state.workspace };
      state.baseEnv = stepEnvironment(this.inheritEnv, extra, {});
    }
    return { ...state.baseEnv, ...own };
  }

  private identity(): { uid?: number; gid?: number } {
    return this.runAs ? { uid: this.runAs.uid, gid: this.runAs.gid } : {};
  }

  /** Gives the workspace (with what was seeded or moved into it) and a fresh HOME to the build user. */
  private async handOver(state: LocalBuild, user: BuildUser): Promise<void> {
    try {
      await chownTree(state.workspace, user.uid, user.gid);
      await chmod(state.workspace, 0o700);
      if (state.home !== undefined) {
        await mkdir(state.home, { mode: 0o700 });
        await chown(state.home, user.uid, user.gid);
      }
    } catch (err) {
      throw new ExecutorError(
        'workspace',
        `could not hand the workspace ${state.workspace} to the build user ${user.name}: ${message(err)}`,
        { cause: err },
      );
    }
  }

  private rootOf(buildId: string): string {
    return join(this.tmpRoot, buildRootName(buildId));
  }
}

/**
 * Fills the (empty) workspace from `from`. A directory the caller gives up whole (the server's
 * clone) is moved, not copied: one rename, whatever its size. Across file systems, or when
 * only some files are wanted, the listed files are copied.
 */
async function seedWorkspace(
  from: string,
  workspace: string,
  seed: SourceSeed,
  signal?: AbortSignal,
): Promise<void> {
  if (seed.movable === true && seed.select === 'all' && seed.withGit) {
    await rmdir(workspace);
    try {
      await rename(from, workspace);
      return;
    } catch (err) {
      await mkdir(workspace, { recursive: true });
      // EXDEV (another file system) and the like: copy instead.
      if (!isCode(err, 'EXDEV') && !isCode(err, 'EPERM') && !isCode(err, 'EACCES')) throw err;
    }
  }
  const list = await listSeed(from, seed, signal);
  await copySeed(from, workspace, list.entries, signal);
}

const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 200;

/**
 * Removes a step directory: its known files side by side, then the directory; anything else in
 * it (a temp file of a watcher killed mid-write) falls back to a recursive removal.
 */
async function removeStepDir(dir: string): Promise<void> {
  await Promise.all(STEP_FILES.map((name) => unlink(join(dir, name)).catch(() => undefined)));
  try {
    await rmdir(dir);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) await removeTree(dir);
  }
}

/** Waits for `promise` (which never rejects) or for `signal` to abort, whichever comes first. */
async function untilSettledOrAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  let onAbort = (): void => undefined;
  const abort = new Promise<void>((resolve) => (onAbort = resolve));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([promise, abort]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function refOf(dir: string, record: StepRecord): StepRef {
  return {
    executor: 'local',
    id: join(dir, RECORD_FILE),
    buildId: record.buildId,
    key: record.key,
    attempt: record.attempt,
    startedAt: record.startedAt,
  };
}

/**
 * What an existing step directory holds once its launch settled: the record of a started step,
 * the exit of a launch that failed, or nothing (its server died before the watcher got the
 * request, or the watcher died starting it). A watcher still starting it (its `launch` file
 * names a live process) is waited for.
 */
async function settleLaunch(
  dir: string,
): Promise<{ kind: 'record'; record: StepRecord } | { kind: 'exit'; exit: StepExit } | { kind: 'none' }> {
  let idle = FIRST_POLL_MS;
  for (;;) {
    const record = await readRecord(dir);
    if (record) return { kind: 'record', record };
    const exit = await readExit(dir);
    if (exit) return { kind: 'exit', exit };
    if (!(await isDirectory(dir)) || !(await launcherAlive(dir))) {
      // The watcher may have written its record just before it ended.
      const late = await readRecord(dir);
      return late ? { kind: 'record', record: late } : { kind: 'none' };
    }
    await sleep(idle);
    idle = Math.min(MAX_POLL_MS, idle * 2);
  }
}

/** Whether anything of a recorded step still runs: its watcher (which will record the exit) or its shell. */
async function isRunning(record: StepRecord): Promise<boolean> {
  const alive = await stepAlive(record);
  return alive.watcher || alive.shell;
}

/** Signals the step's group, only while its shell is the process the record names. */
async function signalStep(record: StepRecord, signal: NodeJS.Signals): Promise<void> {
  if (await isSameProcess(record.pid, record.startTime)) killGroup(record.pgid, signal);
}

/** Waits `ms`, less if `signal` aborts or `wake` settles first. */
async function pause(ms: number, signal?: AbortSignal, wake?: Promise<unknown>): Promise<void> {
  const waits: Promise<unknown>[] = [sleep(ms, undefined, signal ? { signal } : {}).catch(() => undefined)];
  if (wake) waits.push(wake);
  await Promise.race(waits);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
