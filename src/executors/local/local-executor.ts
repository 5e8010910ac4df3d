import { realpathSync } from 'node:fs';
import { chmod, chown, lchown, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ExecutorError,
  type BuildHandle,
  type BuildSpec,
  type Executor,
  type ExecutorResource,
  type OutputSink,
  type StepExit,
  type StepSpec,
  type WorkspaceEntry,
} from '../types.js';
import { buildRootName, isCode, removeTree, scanBuildRoots, writeMarker } from './build-dirs.js';
import type { BuildUser } from './build-user.js';
import { collectLocalFiles } from './collect-files.js';
import { DEFAULT_INHERITED_ENV, stepEnvironment, type InheritEnv } from './host-env.js';
import { forgetGroup, killLeftoverGroups, liveGroups, recordGroup } from './leftovers.js';
import { spawnGroup, type ProcessGroup } from './process-group.js';
import { checkServices, waitForPort } from './services.js';
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
  /** How long to wait for output pipes held open by escaped grandchildren; default 2000. */
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
}

interface RunningProcess {
  proc: ProcessGroup;
  /** Step key, or undefined for a service. */
  step?: string;
  service?: string;
}

interface LocalBuild {
  root: string;
  workspace: string;
  /** HOME of steps that run as another user; undefined: they keep the host's. */
  home?: string;
  project: string;
  processes: Set<RunningProcess>;
}

const DISCARD: OutputSink = { line() {} };

/**
 * Runs steps as host processes (`/bin/sh -e`) in a per-build workspace directory. A step
 * can do what its user can do on the host (files, network, processes): with `runAs` that is
 * the server's unprivileged build user, else the user of this process (`slipway run`).
 *
 * Each step and service is the leader of its own process group, so cancel and cleanup reach
 * everything it started (except what deliberately leaves the group, e.g. with `setsid`).
 * Process groups are known only in memory: if this process dies, its steps keep running and
 * only their workspaces are found again (by the marker in each build root).
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
      ...(this.runAs ? { home: join(root, 'home') } : {}),
    };
    // Registered before the first await: a concurrent prepare of the same id is refused.
    this.builds.set(build.buildId, state);
    try {
      await mkdir(this.tmpRoot, { recursive: true });
      // A root left by a crashed run of the same build id is stale by now.
      await removeTree(root);
      await mkdir(root, { mode: 0o700 });
      // The build user passes through to its workspace, home and scripts, but cannot list
      // or change the root (the marker and process records are the server's).
      if (this.runAs) await chmod(root, 0o711);
      await writeMarker(root, {
        buildId: build.buildId,
        project: build.project,
        branch: build.branch,
        workspace,
        pid: process.pid,
        createdAt: new Date().toISOString(),
      });
      await mkdir(join(root, 'scripts'), { mode: 0o711 });
      if (this.runAs) await chmod(join(root, 'scripts'), 0o711);
      await mkdir(workspace, { recursive: true });
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

  async runStep(
    handle: BuildHandle,
    step: StepSpec,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<StepExit> {
    if (signal.aborted) return { kind: 'aborted' };
    const state = this.builds.get(handle.buildId);
    if (!state) return { kind: 'error', message: `build ${handle.buildId} is not prepared on this executor` };
    let script: string;
    try {
      script = await this.writeScript(state, `step-${step.key}-${step.attempt}`, step.commands);
    } catch (err) {
      return { kind: 'error', message: `could not write the step script: ${message(err)}` };
    }
    if (signal.aborted) return { kind: 'aborted' };

    const proc = spawnGroup({
      script,
      cwd: state.workspace,
      env: this.env(state, step.env),
      sink,
      drainMs: this.drainMs,
      ...this.identity(),
    });
    const entry: RunningProcess = { proc, step: step.key };
    state.processes.add(entry);
    await recordGroup(state.root, proc.pid).catch(() => undefined);
    let aborted = false;
    const onAbort = (): void => {
      aborted = true;
      void proc.terminate(this.killGraceMs);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const end = await proc.done;
      if (end.kind === 'error') return end;
      return aborted ? { kind: 'aborted', exitCode: end.exitCode } : end;
    } finally {
      signal.removeEventListener('abort', onAbort);
      state.processes.delete(entry);
      await forgetGroup(state.root, proc.pid).catch(() => undefined);
      await rm(script, { force: true }).catch(() => undefined);
    }
  }

  collectFiles(
    handle: BuildHandle,
    patterns: readonly string[],
    signal?: AbortSignal,
  ): AsyncIterable<WorkspaceEntry> {
    const workspace = this.builds.get(handle.buildId)?.workspace ?? handle.workspace;
    return collectLocalFiles(workspace, patterns, signal);
  }

  async destroy(handle: BuildHandle): Promise<void> {
    await this.teardown(handle.buildId);
  }

  /**
   * Step and service process groups of this process (`id` = pgid; a service's `step` is
   * `service:<name>`), and every build root with a marker under tmpRoot (`id` = workspace
   * path; `running` only if this process has the build prepared).
   */
  async listResources(): Promise<ExecutorResource[]> {
    const out: ExecutorResource[] = [];
    for (const [buildId, state] of this.builds) {
      for (const { proc, step, service } of state.processes) {
        if (proc.pid === undefined) continue;
        out.push({
          kind: 'process',
          id: String(proc.pid),
          buildId,
          project: state.project,
          step: step ?? `service:${service}`,
          running: true,
        });
      }
    }
    for (const { root, marker } of await scanBuildRoots(this.tmpRoot)) {
      if (!this.builds.has(marker.buildId)) {
        for (const pgid of await liveGroups(root)) {
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

  /** Stops the build's processes (grace, then kill) and removes its root. Idempotent. */
  private async teardown(buildId: string): Promise<void> {
    const state = this.builds.get(buildId);
    if (state) {
      await Promise.all([...state.processes].map(({ proc }) => proc.terminate(this.killGraceMs)));
      this.builds.delete(buildId);
    } else {
      // Not ours in memory: a leftover of a Slipway process that died with steps running.
      await killLeftoverGroups(this.rootOf(buildId));
    }
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
    const user = this.runAs;
    const extra: Record<string, string> =
      user && state.home !== undefined
        ? { PWD: state.workspace, HOME: state.home, USER: user.name, LOGNAME: user.name }
        : { PWD: state.workspace };
    return stepEnvironment(this.inheritEnv, extra, own);
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

/** `chown -hR`: symlinks themselves, never what they point to. */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const entries = await readdir(path, { withFileTypes: true });
  await Promise.all(
    entries.map((entry) =>
      entry.isDirectory()
        ? chownTree(join(path, entry.name), uid, gid)
        : lchown(join(path, entry.name), uid, gid),
    ),
  );
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
