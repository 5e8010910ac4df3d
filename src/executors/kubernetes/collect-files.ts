/**
 * `collectFiles` of the kubernetes executor (artifacts). Slipway only talks to the API server
 * and never uses exec or attach (WebSockets), so the workspace leaves the pod through a
 * container's LOG: an ephemeral container `collect-<hash>-<n>` (the helper image, the
 * workspace mounted read-only) tars the paths the patterns can reach and writes the tar
 * base64-encoded to stdout, ending with a marker line `slipway-collect: end <bytes> <status>`.
 * Slipway follows that log once (the container runs once), decodes it, checks the byte count
 * against the marker, and reads the tar with the docker executor's tar reader and the same
 * pattern, symlink and regular-file rules (`../workspace-files.ts`).
 *
 * What is read: the literal directory prefix of each pattern (`dist` of `dist/**`, the whole
 * workspace only for a pattern that starts with a wildcard). The container walks each prefix
 * component by component and stops at the first symlink or non-directory, which it tars as
 * itself (tar never follows the last component, and never a symlink below what it reads), so
 * nothing outside the workspace is ever read, and it reports how far it got (`dir <i> <k>`:
 * the first k components of path i are real directories), so that Slipway knows what exists.
 * Matched symlinks are resolved afterwards through the links seen; a target the first tar did
 * not cover is looked up with another container (`--no-recursion`), and the real files behind
 * matched links are fetched by their real paths in one more.
 *
 * Size: the log passes through the kubelet's log files (rotated at `containerLogMaxSize`,
 * 10 MiB by default, and followed across rotations), so the tar is streamed: decoded bytes
 * wait in memory up to {@link SPOOL_MEMORY_BYTES} when the reader is slower than the log (the
 * log API has no back-pressure), then in a temporary file. A count that does not match the
 * marker (a log cut or rotated away) fails the collection. Limits on artifact sizes are the
 * caller's (`src/server/artifacts/collector.ts`), as on the docker executor: every matched
 * byte crosses the API server.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readTar, type TarEntry } from '../docker/tar-reader.js';
import type { WorkspaceEntry } from '../types.js';
import { ExecutorError } from '../types.js';
import { artifactPathProblem, compileArtifactPatterns, resolveLinkTarget } from '../workspace-files.js';
import { KubeApiError, type EphemeralContainer, type KubeApi, type Pod } from './kube-api.js';
import {
  CONTROL_DIR,
  CONTROL_VOLUME,
  literalArgs,
  shortHash,
  WORKSPACE_DIR,
  WORKSPACE_VOLUME,
} from './manifests/index.js';
import { containerPhase, isHopeless, isPullFailure, podFailure } from './pod-status.js';
import type { PodView, PodWatch } from './pod-watch.js';

/** Decoded bytes kept in memory for a slow reader before they go to a temporary file. */
export const SPOOL_MEMORY_BYTES = 8 * 1024 * 1024;
/** Symlink hops followed before a link is called a loop. */
const MAX_HOPS = 40;
/** Look-up containers for symlink targets, at most (each learns at least one more path component). */
const MAX_LOOKUP_ROUNDS = 8;
const MARK = 'slipway-collect: ';
const BATCH_BYTES = 64 * 1024;

/**
 * The collect container's command (`/bin/sh -c SCRIPT slipway-collect <recurse 0|1> <path>…`),
 * POSIX sh with busybox's tar, base64 and awk. Paths are workspace-relative (`.` = all of it).
 * POSIX sh has no pipefail: tar's status and stderr, and awk's count of the bytes base64 carried,
 * come back through fd 4 (the command substitution) so that the log holds only the base64 lines
 * and the marker lines.
 */
export const COLLECT_SCRIPT = `recurse=$1; shift
cd ${WORKSPACE_DIR} || { echo "${MARK}end 0 cd"; exit 2; }
n=$#; i=0
while [ "$i" -lt "$n" ]; do
  p=$1; shift
  q=; rest=$p; k=0
  if [ "$p" = . ]; then q=.; else
    while :; do
      c=\${rest%%/*}
      if [ "$c" = "$rest" ]; then rest=; else rest=\${rest#*/}; fi
      q=\${q:+$q/}$c
      if [ -z "$rest" ] || [ -L "$q" ] || [ ! -d "$q" ]; then break; fi
      k=$((k+1))
    done
  fi
  echo "${MARK}dir $i $k"
  if [ -e "$q" ] || [ -L "$q" ]; then set -- "$@" "$q"; fi
  i=$((i+1))
done
if [ "$#" -eq 0 ]; then echo "${MARK}end 0 0"; exit 0; fi
if [ "$recurse" = 1 ]; then set -- -cf - -- "$@"; else set -- -cf - --no-recursion -- "$@"; fi
exec 3>&1
out=$( { { tar "$@" 2>&4; echo "tar $?" >&4; } | base64 | awk '{ print; n += int(length($0) / 4) * 3 - gsub(/=/, "=") } END { printf "%d\\n", n > "/dev/stderr" }' 2>&4 >&3; } 4>&1 )
nl='
'
count=\${out##*"$nl"}
head=\${out%"$nl"*}
[ "$head" = "$out" ] && head=
st=\${head##*"$nl"}
errs=\${head%"$nl"*}
[ "$errs" = "$head" ] && errs=
if [ -n "$errs" ]; then printf '%s\\n' "$errs" | sed 's/^/${MARK}error: /'; fi
st=\${st#tar }
echo "${MARK}end $count $st"
case $st in ''|*[!0-9]*) exit 1 ;; *) exit "$st" ;; esac
`;

export interface CollectPodOptions {
  api: KubeApi;
  /** The executor's watch: the collect container's state comes from it. */
  watch: PodWatch;
  /** The build's pod (prepared, running). */
  pod: string;
  helperImage: string;
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** How long the collect container may take to start; default 5 min. */
  pendingTimeoutMs?: number;
  /** How long a failing pull of the helper image is retried; default 20 s. */
  pullGraceMs?: number;
}

type Kind = TarEntry['type'];

interface Seen {
  kind: Kind;
  /** Workspace-relative target of a hard link; raw target of a symlink. */
  link?: string;
}

type Resolved =
  | { path: string; kind: Kind }
  | { outside: true }
  | { missing: true }
  | { loop: true }
  /** A component of `path` is not known yet: look `path` up. */
  | { unknown: string };

/** See the file's comment. */
export async function* collectPodFiles(
  options: CollectPodOptions,
  patterns: readonly string[],
  signal?: AbortSignal,
): AsyncGenerator<WorkspaceEntry> {
  const { set, problems } = compileArtifactPatterns(patterns);
  for (const problem of problems)
    yield { kind: 'rejected', path: problem.pattern, reason: `pattern refused: ${problem.reason}` };
  const candidates = candidatePaths(set.literalPrefixes.map((p) => p.prefix));
  if (candidates.length === 0) return;

  const seen = new Map<string, Seen>();
  /** Read with everything below them (a recursive tar went through them or stopped there). */
  const answeredDeep = new Set<string>();
  /** Known exactly (a `--no-recursion` look-up stopped there): not what is below. */
  const answeredExact = new Set<string>();
  const lookedUp = new Set<string>();
  const links: string[] = [];
  const refused = new Set<string>();
  const runner = new CollectRunner(options, signal);

  const learn = (paths: readonly string[], recurse: boolean, headers: DirHeader[]): void => {
    for (const { index, dirs } of headers) {
      const path = paths[index];
      if (path === undefined) continue;
      if (path === '.') {
        answeredDeep.add('');
        continue;
      }
      const parts = path.split('/');
      for (let i = 1; i <= Math.min(dirs, parts.length - 1); i++) {
        const prefix = parts.slice(0, i).join('/');
        if (!seen.has(prefix)) seen.set(prefix, { kind: 'directory' });
      }
      const stop = parts.slice(0, Math.min(dirs + 1, parts.length)).join('/');
      (recurse ? answeredDeep : answeredExact).add(stop);
    }
  };
  const known = (path: string): boolean => {
    if (answeredDeep.has('') || answeredExact.has(path)) return true;
    for (let p = path; ;) {
      if (answeredDeep.has(p)) return true;
      const slash = p.lastIndexOf('/');
      if (slash === -1) return false;
      p = p.slice(0, slash);
    }
  };

  // 1. The candidates, recursively: matching regular files are handed over as they pass.
  {
    const headers: DirHeader[] = [];
    const emitted = new Set<string>();
    for await (const entry of runner.run(candidates, true, headers)) {
      const path = cleanName(entry.name);
      if (path === '' || emitted.has(path)) continue;
      emitted.add(path);
      const info: Seen = { kind: entry.type };
      if (entry.type === 'symlink') info.link = entry.linkName;
      if (entry.type === 'hardlink') info.link = cleanName(entry.linkName);
      seen.set(path, info);
      const matched = set.match(path) !== -1;
      if (entry.type === 'symlink' || entry.type === 'hardlink') {
        if (matched || set.through(path).length > 0) links.push(path);
        continue;
      }
      if (!matched || entry.type === 'directory') continue;
      const problem = artifactPathProblem(path);
      if (problem !== undefined) yield { kind: 'rejected', path, reason: problem };
      else if (entry.type !== 'file' || entry.body === undefined)
        yield { kind: 'rejected', path, reason: 'not a regular file' };
      else {
        const body = entry.body;
        yield { kind: 'file', path, size: entry.size, open: () => body };
      }
    }
    learn(candidates, true, headers);
  }
  if (links.length === 0) return;

  // 2. Where the links lead: look up what the first tar did not cover, without recursion.
  let resolved = new Map<string, Resolved>();
  for (let round = 0; ; round++) {
    resolved = new Map(links.map((path) => [path, resolve(path)]));
    const wanted = [
      ...new Set(
        [...resolved.values()].flatMap((r) =>
          'unknown' in r && !lookedUp.has(r.unknown) ? [r.unknown] : [],
        ),
      ),
    ];
    if (wanted.length === 0 || round >= MAX_LOOKUP_ROUNDS) break;
    const headers: DirHeader[] = [];
    for await (const entry of runner.run(wanted, false, headers)) {
      const path = cleanName(entry.name);
      if (path === '' || seen.has(path)) continue;
      const info: Seen = { kind: entry.type };
      if (entry.type === 'symlink') info.link = entry.linkName;
      if (entry.type === 'hardlink') info.link = cleanName(entry.linkName);
      seen.set(path, info);
    }
    for (const path of wanted) lookedUp.add(path);
    learn(wanted, false, headers);
  }

  // 3. Verdicts, in the docker executor's words; the real files behind matched links wait.
  const fetch = new Map<string, { path: string; what: string }[]>();
  for (const path of links) {
    signal?.throwIfAborted();
    const result = resolved.get(path)!;
    const info = seen.get(path)!;
    if (set.match(path) === -1) {
      // A symlink on a pattern's literal prefix: the pattern cannot reach below it.
      if (refused.has(path)) continue;
      refused.add(path);
      yield {
        kind: 'rejected',
        path,
        reason:
          'outside' in result
            ? `symlink to ${info.link ?? '?'}, outside the workspace`
            : `symlink to ${info.link ?? '?'}; patterns do not follow symlinked directories`,
      };
      continue;
    }
    const problem = artifactPathProblem(path);
    if (problem !== undefined) {
      yield { kind: 'rejected', path, reason: problem };
      continue;
    }
    const what = info.kind === 'hardlink' ? 'hard link' : `symlink to ${info.link ?? '?'}`;
    const reason =
      'outside' in result
        ? `${what}, outside the workspace`
        : 'missing' in result || 'unknown' in result
          ? `${what}, which does not exist`
          : 'loop' in result
            ? `${what}: too many levels of symlinks`
            : result.kind === 'directory'
              ? `${what}, a directory; symlinked directories are not followed`
              : result.kind !== 'file' && result.kind !== 'hardlink'
                ? `${what}, which is not a regular file`
                : undefined;
    if (reason !== undefined) {
      yield { kind: 'rejected', path, reason };
      continue;
    }
    if ('path' in result) {
      const waiting = fetch.get(result.path) ?? [];
      waiting.push({ path, what });
      fetch.set(result.path, waiting);
    }
  }

  // 4. The real files, by their real paths (whose components are known plain directories);
  // one link per real path and container, since a body can be read once.
  while (fetch.size > 0) {
    const paths = [...fetch.keys()];
    const handed = new Set<string>();
    for await (const entry of runner.run(paths, false, [])) {
      const real = cleanName(entry.name);
      const waiting = fetch.get(real);
      if (waiting === undefined || handed.has(real)) continue;
      handed.add(real);
      const link = waiting.shift()!;
      if (entry.type !== 'file' || entry.body === undefined) {
        yield { kind: 'rejected', path: link.path, reason: `${link.what}, which is gone` };
      } else {
        const body = entry.body;
        yield { kind: 'file', path: link.path, size: entry.size, open: () => body };
      }
      if (waiting.length === 0) fetch.delete(real);
    }
    for (const real of paths) {
      if (handed.has(real)) continue;
      for (const link of fetch.get(real) ?? [])
        yield { kind: 'rejected', path: link.path, reason: `${link.what}, which is gone` };
      fetch.delete(real);
    }
  }

  /** The real workspace path behind a link, resolving every component through the links seen. */
  function resolve(path: string): Resolved {
    let current = path;
    for (let hops = 0; hops <= MAX_HOPS; hops++) {
      const parts = current.split('/');
      let rewritten: string | undefined;
      for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        const info = seen.get(prefix);
        if (info === undefined) {
          return known(prefix) || lookedUp.has(current) ? { missing: true } : { unknown: current };
        }
        const rest = parts.slice(i).join('/');
        if (info.kind === 'symlink' || info.kind === 'hardlink') {
          // A hard link to a file is that file; a symlink is resolved against where it sits.
          const target =
            info.kind === 'hardlink' ? info.link : resolveLinkTarget(prefix, info.link ?? '', WORKSPACE_DIR);
          if (target === undefined) return { outside: true };
          if (info.kind === 'hardlink' && i === parts.length)
            return { path: target, kind: seen.get(target)?.kind ?? 'file' };
          rewritten = rest === '' ? target : target === '' ? rest : `${target}/${rest}`;
          break;
        }
        if (i === parts.length) return { path: current, kind: info.kind };
        if (info.kind !== 'directory') return { missing: true };
      }
      if (rewritten === undefined) return { missing: true };
      if (rewritten === '') return { path: '', kind: 'directory' };
      current = rewritten;
    }
    return { loop: true };
  }
}

/**
 * What the collect container reads: the literal prefix of every pattern, without those below
 * another one; `.` (everything) when a pattern starts with a wildcard.
 */
export function candidatePaths(prefixes: readonly string[]): string[] {
  if (prefixes.length === 0) return [];
  if (prefixes.includes('')) return ['.'];
  const sorted = [...new Set(prefixes)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && p.startsWith(`${q}/`)));
}

export interface DirHeader {
  /** Index into the paths the container got. */
  index: number;
  /** How many leading components of that path are real directories (not symlinks), the last one aside. */
  dirs: number;
}

/** A collect container: its command (kubelet-escaped, see `literalArgs`) and mounts. */
export interface LogTarContainer {
  command: string[];
  volumeMounts: IVolumeMount[];
}

/** A tar on its way out of the pod through a collect container's log, see `CollectRunner.open`. */
export interface LogTar {
  chunks: AsyncIterable<Buffer>;
  failure(readError: unknown): Promise<ExecutorError>;
  check(): Promise<ExecutorError | undefined>;
  close(): Promise<void>;
}

/** Runs collect containers in one build pod, one at a time. */
export class CollectRunner {
  private readonly pendingMs: number;
  private readonly pullGraceMs: number;

  constructor(
    private readonly options: CollectPodOptions,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.pendingMs = options.pendingTimeoutMs ?? 5 * 60_000;
    this.pullGraceMs = options.pullGraceMs ?? 20_000;
  }

  /**
   * Tars `paths` in a new collect container and hands over the tar's entries as they arrive;
   * `headers` gets the container's `dir` lines. Throws `ExecutorError('workspace')` when the
   * container fails, says tar failed, or its log is not complete.
   */
  async *run(paths: readonly string[], recurse: boolean, headers: DirHeader[]): AsyncGenerator<TarEntry> {
    const tar = await this.open(
      {
        // Every \`$\` doubled: the kubelet expands \`$(NAME)\` and reduces \`$$\` in command and args.
        command: literalArgs([
          '/bin/sh',
          '-c',
          COLLECT_SCRIPT,
          'slipway-collect',
          recurse ? '1' : '0',
          ...paths,
        ]),
        volumeMounts: [
          { name: WORKSPACE_VOLUME, mountPath: WORKSPACE_DIR, readOnly: true },
          { name: CONTROL_VOLUME, mountPath: CONTROL_DIR, readOnly: true },
        ],
      },
      headers,
    );
    try {
      try {
        for await (const entry of readTar(Readable.from(tar.chunks))) {
          this.signal?.throwIfAborted();
          yield entry;
        }
      } catch (error) {
        this.signal?.throwIfAborted();
        throw await tar.failure(error);
      }
      const problem = await tar.check();
      if (problem) throw problem;
    } finally {
      await tar.close();
    }
  }

  /**
   * Adds a collect container running \`container.command\` (a script that writes a tar as
   * base64 lines and the end marker, as {@link COLLECT_SCRIPT} does) and follows its log:
   * \`chunks\` are the decoded tar's bytes as they arrive (spooled, see {@link Spool}). Once
   * they were read, \`check\` tells whether the log held the whole tar; when reading them
   * failed, \`failure\` says why (the container's own failure first). \`close\` always.
   */
  async open(container: LogTarContainer, headers: DirHeader[]): Promise<LogTar> {
    const { api, watch, pod } = this.options;
    const name = await this.addContainer(container);
    const stop = new AbortController();
    const signal = this.signal ? AbortSignal.any([this.signal, stop.signal]) : stop.signal;
    const spool = new Spool(SPOOL_MEMORY_BYTES);
    const log = new CollectLog(headers, (bytes) => spool.push(bytes));
    const follow = api
      .followLog(
        {
          pod,
          container: name,
          signal,
          ended: () => {
            const view = watch.view(pod);
            return Promise.resolve(
              !view.pod || containerPhase(view.pod, name, 'ephemeral').state === 'terminated',
            );
          },
        },
        (line) => log.line(line.text.toString('latin1')),
      )
      .then(
        () => {
          log.flush();
          spool.end();
        },
        (error: unknown) => {
          spool.fail(new Error(`reading its log failed: ${errorText(error)}`));
          throw error;
        },
      );
    follow.catch(() => undefined);
    const ended = this.awaitEnd(name, signal).then((end) => {
      // A container that never ran has no log to wait for.
      if ('error' in end) {
        spool.fail(new Error(end.error));
        stop.abort();
      }
      return end;
    });
    let complete = false;
    return {
      chunks: spool.chunks(),
      failure: async (error) => {
        const end = await ended;
        if ('error' in end) return this.failure(name, end.error);
        return this.failure(name, `its output is not a readable tar (${errorText(error)})`);
      },
      check: async () => {
        const end = await ended;
        if ('error' in end) return this.failure(name, end.error);
        try {
          await follow;
        } catch (error) {
          return this.failure(name, `its log could not be read: ${errorText(error)}`);
        }
        const problem = log.problem(end.exitCode);
        if (problem !== undefined) return this.failure(name, problem);
        complete = true;
        return undefined;
      },
      close: async () => {
        if (!complete) stop.abort();
        await spool.close();
      },
    };
  }

  private failure(container: string, why: string): ExecutorError {
    return new ExecutorError(
      'workspace',
      `could not read the workspace of pod ${this.options.pod} (container ${container}): ${why}`,
    );
  }

  /** Adds the collect container; a name another collection took meanwhile moves on to the next `n`. */
  private async addContainer(spec: LogTarContainer): Promise<string> {
    const { api, pod } = this.options;
    const command = spec.command;
    const hash = shortHash(JSON.stringify(command.slice(3)), 8);
    for (let attempt = 0; ; attempt++) {
      const current = await this.call('read the build pod', () => api.getPod(pod));
      if (!current) throw new ExecutorError('workspace', `the build pod ${pod} is gone`);
      const failure = podFailure(current);
      if (failure) throw new ExecutorError('workspace', failure.message);
      this.options.watch.offer(current);
      const n =
        1 + (current.spec?.ephemeralContainers ?? []).filter((c) => c.name.startsWith('collect-')).length;
      const name = `collect-${hash}-${n + attempt}`;
      const container: EphemeralContainer = {
        name,
        image: this.options.helperImage,
        ...(this.options.pullPolicy ? { imagePullPolicy: this.options.pullPolicy } : {}),
        command,
        workingDir: WORKSPACE_DIR,
        volumeMounts: [...spec.volumeMounts],
      };
      let updated: Pod;
      try {
        updated = await api.addEphemeralContainer(pod, container);
      } catch (error) {
        // 409/422: a concurrent collection took the name first.
        if (attempt < 5 && error instanceof KubeApiError && (error.status === 409 || error.status === 422))
          continue;
        throw this.wrap('add the collect container', error);
      }
      const added = updated.spec?.ephemeralContainers?.find((c) => c.name === name);
      if (added && JSON.stringify(added.command) === JSON.stringify(command)) return name;
      if (attempt >= 5)
        throw new ExecutorError('workspace', `could not add a collect container to pod ${pod}`);
    }
  }

  /** The collect container's exit code once it terminated, or why it never will. */
  private async awaitEnd(
    name: string,
    signal: AbortSignal,
  ): Promise<{ exitCode: number } | { error: string }> {
    const { watch, pod } = this.options;
    const since = Date.now();
    let pullFailingSince: number | undefined;
    const decide = (view: PodView, now: number): { exitCode: number } | { error: string } | undefined => {
      if (!view.pod) return view.deleted ? { error: `the build pod ${pod} was deleted` } : undefined;
      const phase = containerPhase(view.pod, name, 'ephemeral');
      if (phase.state === 'terminated') return { exitCode: phase.exitCode };
      const failure = podFailure(view.pod);
      if (failure) return { error: failure.message };
      if (phase.state === 'waiting') {
        const text = `${phase.reason}${phase.message ? `: ${phase.message}` : ''}`;
        if (isHopeless(phase.reason)) return { error: `it cannot start: ${text}` };
        if (isPullFailure(phase.reason)) {
          pullFailingSince ??= now;
          if (now - pullFailingSince >= this.pullGraceMs)
            return { error: `cannot pull image "${this.options.helperImage}": ${text}` };
        } else pullFailingSince = undefined;
      }
      if (phase.state !== 'running' && now - since >= this.pendingMs)
        return { error: `it did not start within ${Math.round(this.pendingMs / 1000)}s` };
      return undefined;
    };
    for (;;) {
      if (signal.aborted) return { error: 'cancelled' };
      let result: { exitCode: number } | { error: string } | undefined;
      await watch.until(
        pod,
        (view) => (result = decide(view, Date.now())) !== undefined,
        AbortSignal.any([signal, AbortSignal.timeout(1000)]),
      );
      if (result !== undefined) return result;
    }
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.wrap(what, error);
    }
  }

  private wrap(what: string, error: unknown): ExecutorError {
    return new ExecutorError(
      error instanceof KubeApiError && error.status === 0 ? 'engine_unavailable' : 'workspace',
      `could not ${what} of pod ${this.options.pod}: ${errorText(error)}`,
      { cause: error },
    );
  }
}

/** Parses the collect container's log: `dir` headers, base64 lines, error lines, the end marker. */
export class CollectLog {
  private decoded = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private marker: { bytes: number; status: string } | undefined;
  private readonly errors: string[] = [];
  private readonly unexpected: string[] = [];
  private carry = '';

  constructor(
    private readonly headers: DirHeader[],
    private readonly deliver: (bytes: Buffer) => void,
  ) {}

  line(text: string): void {
    if (text.startsWith(MARK)) {
      const rest = text.slice(MARK.length);
      let m: RegExpExecArray | null;
      if ((m = /^dir (\d+) (\d+)$/.exec(rest))) {
        this.headers.push({ index: Number(m[1]), dirs: Number(m[2]) });
      } else if ((m = /^end (\d*) ?(.*)$/.exec(rest))) {
        this.flush();
        this.marker = { bytes: m[1] === '' ? -1 : Number(m[1]), status: m[2]!.trim() };
      } else if (rest.startsWith('error: ')) {
        if (this.errors.length < 10) this.errors.push(rest.slice('error: '.length));
      } else this.note(text);
      return;
    }
    if (this.marker !== undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      this.note(text);
      return;
    }
    // busybox wraps at 76 characters (whole quanta); a carry keeps any other wrapping exact.
    const all = this.carry + text;
    const whole = all.length - (all.length % 4);
    this.carry = all.slice(whole);
    if (whole === 0) return;
    const bytes = Buffer.from(all.slice(0, whole), 'base64');
    this.decoded += bytes.length;
    this.batch.push(bytes);
    this.batchBytes += bytes.length;
    if (this.batchBytes >= BATCH_BYTES) this.flush();
  }

  flush(): void {
    if (this.batchBytes === 0) return;
    const bytes = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch);
    this.batch = [];
    this.batchBytes = 0;
    this.deliver(bytes);
  }

  /** Why the log does not hold the whole tar, or undefined when it does. */
  problem(exitCode: number): string | undefined {
    const told = this.errors.length > 0 ? `: ${this.errors.join('; ')}` : '';
    if (this.unexpected.length > 0)
      return `unexpected lines in its log (exit code ${exitCode}): ${this.unexpected.join(' | ')}`;
    if (this.marker === undefined)
      return `its log ended without the end marker (exit code ${exitCode})${told}; the log may have been cut or rotated away`;
    if (this.marker.status !== '0' || exitCode !== 0)
      return `tar failed (status ${this.marker.status || '?'}, exit code ${exitCode})${told}`;
    if (this.carry !== '' || this.marker.bytes !== this.decoded)
      return `received ${this.decoded} of ${this.marker.bytes} bytes; the log may have been cut or rotated away`;
    return undefined;
  }

  private note(text: string): void {
    if (this.unexpected.length < 5) this.unexpected.push(text.length > 200 ? `${text.slice(0, 200)}…` : text);
  }
}

/**
 * Bytes from a push source (the log API has no back-pressure) for a pull reader, in order:
 * up to `memoryBytes` unread in memory, the rest in a temporary file until the reader catches up.
 */
export class Spool {
  private readonly memory: Buffer[] = [];
  private memoryBytes = 0;
  private spilling = false;
  /** Bytes queued to the file, written to it, and read back from it (offsets in the file). */
  private queued = 0;
  private written = 0;
  private read = 0;
  private file: Promise<{ handle: FileHandle; dir: string }> | undefined;
  private writes: Promise<void> = Promise.resolve();
  private ended = false;
  private closed = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.closed || this.failure) return;
    if (!this.spilling && this.memoryBytes + chunk.length <= this.limit) {
      this.memory.push(chunk);
      this.memoryBytes += chunk.length;
      this.notify();
      return;
    }
    this.spilling = true;
    const offset = this.queued;
    this.queued += chunk.length;
    this.writes = this.writes
      .then(async () => {
        if (this.closed) return;
        const { handle } = await this.openFile();
        await handle.write(chunk, 0, chunk.length, offset);
        this.written = offset + chunk.length;
        this.notify();
      })
      .catch((error: unknown) =>
        this.fail(new Error(`spooling to a temporary file failed: ${errorText(error)}`)),
      );
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.notify();
  }

  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.closed) return;
      const chunk = this.memory.shift();
      if (chunk !== undefined) {
        this.memoryBytes -= chunk.length;
        yield chunk;
        continue;
      }
      if (this.spilling && this.read < this.written) {
        const { handle } = await this.openFile();
        const buffer = Buffer.alloc(Math.min(BATCH_BYTES, this.written - this.read));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.read);
        this.read += bytesRead;
        yield buffer.subarray(0, bytesRead);
        continue;
      }
      if (this.spilling && this.read === this.queued) {
        // Caught up: back to memory, and the file is written again from its start.
        this.spilling = false;
        this.queued = this.written = this.read = 0;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended && !this.spilling) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.memory.length = 0;
    this.notify();
    await this.writes;
    if (!this.file) return;
    const { handle, dir } = await this.file.catch(() => ({ handle: undefined, dir: undefined }));
    await handle?.close().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Whether bytes ever waited in the temporary file (tests). */
  get spilled(): boolean {
    return this.file !== undefined;
  }

  private openFile(): Promise<{ handle: FileHandle; dir: string }> {
    this.file ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'slipway-collect-'));
      return { handle: await open(join(dir, 'spool'), 'w+', 0o600), dir };
    })();
    return this.file;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** `./a/b/` → `a/b`, `.` → ''. */
function cleanName(name: string): string {
  return name
    .replace(/^(\.\/)+/, '')
    .replace(/^\.$/, '')
    .replace(/\/+$/, '');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
