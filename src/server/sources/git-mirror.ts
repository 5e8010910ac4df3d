/**
 * Checkouts from a per-project mirror: a bare repository in the server's data directory that
 * is fetched into only when a build wants a commit it does not have yet. Each build then gets
 * a self-contained shallow repository of exactly its commit (what a `--depth=1` clone gives:
 * `git rev-parse HEAD`, `git log`, `git status` work; no branch, detached HEAD, `origin` is the
 * repository's URL without credentials) made from the mirror by two git processes run side by
 * side: `pack-objects` (the commit, its tree and blobs into the build's `.git`) and `read-tree`
 * (the files and the index); or, for a small tree with nothing git would convert, the same
 * written from what the mirror's cat-file reads (tree-checkout.ts: no git started). Nothing of the build's directory points back into the mirror, so
 * a build can neither read other commits' objects through it nor change it.
 *
 * Concurrency (one server process per data directory): builds of one project fetch one at a
 * time (the second finds the first's commits), their checkouts run side by side, and a mirror
 * is re-made only when no checkout reads it. A mirror that cannot serve a build (half made,
 * a fetch killed half way, corrupt objects) is re-made from the repository and the build tried
 * once more: a broken mirror costs a fresh clone, never a failed build.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { listProjects, type Database } from '../../store/index.js';
import { COMMIT_INFO_FORMAT, parseCommitInfo, type CommitInfo } from './commit-info.js';
import { closeCommitReader, commitReaderOf, CommitReaderError } from './commit-reader.js';
import { checkoutTree, configAllows, type ObjectSource } from './tree-checkout.js';
import {
  CheckoutError,
  findRef,
  gitAuth,
  isSafeRefName,
  redactUrl,
  runGit,
  type CheckoutRequest,
  type FoundRef,
} from './git-checkout.js';

/** What {@link checkoutFromMirror} made: the commit and what git says of it. */
export interface MirrorCheckout {
  commit: string;
  /** Undefined when git's answer was too long to read (a message of megabytes). */
  info?: CommitInfo;
}

/** A file in the mirror's git directory written once it is set up: without it, it is half made. */
const MARKER = 'slipway-mirror';
/**
 * Settings of every mirror. git's own gc after a fetch is off: it could drop a pack a
 * checkout is reading; {@link checkoutFromMirror} runs gc itself when no checkout reads. Every
 * fetch keeps a pack (no loose objects), so that counting packs tells when gc is due.
 */
const MIRROR_CONFIG = [
  '[gc]',
  '\tauto = 0',
  '[maintenance]',
  '\tauto = false',
  '[transfer]',
  '\tunpackLimit = 1',
  '[core]',
  '\tlogAllRefUpdates = false',
  '[fetch]',
  '\twriteCommitGraph = false',
  '',
].join('\n');

const COMMIT = /^[0-9a-f]{4,64}$/i;
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
/** A mirror with this many packs (one per fetch) is gc'ed into one. */
const GC_PACKS = 24;

/**
 * The mirror of a project's repository under `root`: by project id (two projects never share
 * objects, whatever their credentials) and a hash of the URL (a project pointed elsewhere gets
 * a new mirror; credentials never appear in the name).
 */
export function mirrorPath(root: string, project: { id: number; repoUrl: string }): string {
  const hash = createHash('sha256').update(project.repoUrl).digest('hex').slice(0, 16);
  return join(resolve(root), `${project.id}-${hash}.git`);
}

/**
 * Checks `request.commit` (or the ref's tip) out into `request.dir` from the mirror at
 * `mirror`, fetching into the mirror only when it lacks the commit. Errors are those of
 * {@link checkout}, with the same words.
 */
export async function checkoutFromMirror(
  request: CheckoutRequest & { mirror: string },
): Promise<MirrorCheckout> {
  const { ref, commit } = request;
  if (!isSafeRefName(ref)) throw new CheckoutError(`invalid ref "${ref}"`);
  if (commit !== undefined && !COMMIT.test(commit))
    throw new CheckoutError(`invalid commit "${commit}": expected 4 to 64 hexadecimal digits`);
  const mirror = resolve(request.mirror);
  const state = stateOf(mirror);
  for (let attempt = 1; ; attempt++) {
    const generation = state.generation;
    try {
      const made = await state.lock.read(() => attemptCheckout(request, mirror, state));
      if (state.gcDue) {
        state.gcDue = false;
        // In the background: the builds after this one wait for it, this one does not.
        void state.lock.write(() => gc(mirror)).catch(() => undefined);
      }
      return made;
    } catch (error) {
      if (!(error instanceof MirrorBroken) || request.signal?.aborted) throw error;
      if (attempt > 1)
        throw new CheckoutError(
          `checkout from the repository's mirror failed: ${error.message}`,
          error.message,
        );
      if (error.message !== 'missing')
        request.log?.(`the mirror of the repository cannot be used (${error.message}): making it again`);
      await state.lock.write(async () => {
        // Another build may have re-made it already while this one waited.
        if (state.generation === generation || !(await isMirror(mirror))) await remake(mirror);
        state.generation += 1;
      });
    }
  }
}

async function attemptCheckout(
  request: CheckoutRequest,
  mirror: string,
  state: MirrorState,
): Promise<MirrorCheckout> {
  const { commit, signal } = request;
  let found =
    commit !== undefined && (await isMirror(mirror)) ? await commitIn(mirror, commit, signal) : undefined;
  found ??= await state.fetching.run(async () => {
    const fetched = await fetchInto(request, mirror);
    if ((await packsIn(mirror)) >= GC_PACKS) state.gcDue = true;
    return fetched;
  });
  await makeCheckout(mirror, request.dir, found.commit, gitAuth(request.repoUrl).url, signal);
  return found;
}

/** What {@link readMirrorFile} found: the file's text, its size when too big, or why there is none. */
export type MirrorFile = { text: string } | { tooBig: number } | { missing: string };

/**
 * The file `file` of the repository at `ref`, a full commit sha or a tag (pinned: a branch is
 * refused, it moves), read from the mirror at `mirror` and fetched into it when it lacks the
 * ref: another project's file for a pipeline's `include:`. A blob over `maxBytes` is not read.
 * Throws a {@link CheckoutError} when the ref cannot be had, with words for the build's reason.
 */
export async function readMirrorFile(request: {
  repoUrl: string;
  mirror: string;
  ref: string;
  file: string;
  maxBytes: number;
  signal?: AbortSignal;
}): Promise<MirrorFile> {
  const mirror = resolve(request.mirror);
  const state = stateOf(mirror);
  for (let attempt = 1; ; attempt++) {
    const generation = state.generation;
    try {
      return await state.lock.read(async () => {
        const rev = await pinnedIn(request, mirror, state);
        return await fileAt(mirror, rev, request.file, request.maxBytes, request.signal);
      });
    } catch (error) {
      if (!(error instanceof MirrorBroken) || request.signal?.aborted) throw error;
      if (attempt > 1) throw new CheckoutError(`reading the repository's mirror failed: ${error.message}`);
      await state.lock.write(async () => {
        if (state.generation === generation || !(await isMirror(mirror))) await remake(mirror);
        state.generation += 1;
      });
    }
  }
}

/** `git fetch` of one refspec (or commit) from `url` into the mirror, without tags or FETCH_HEAD. */
function gitFetch(
  mirror: string,
  url: string,
  what: string,
  auth: ReturnType<typeof gitAuth>['auth'],
  signal: AbortSignal | undefined,
): ReturnType<typeof runGit> {
  return runGit(
    ['--git-dir', mirror, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', url, what],
    undefined,
    signal,
    undefined,
    auth,
  );
}

/** The mirror's name of the pinned ref (`sha` or `refs/tags/…`), fetched when it lacks it. */
async function pinnedIn(
  request: { repoUrl: string; ref: string; signal?: AbortSignal },
  mirror: string,
  state: MirrorState,
): Promise<string> {
  const { signal } = request;
  const rev = FULL_SHA.test(request.ref) ? request.ref.toLowerCase() : `refs/tags/${request.ref}`;
  if (rev.startsWith('refs/') && !isSafeRefName(request.ref))
    throw new CheckoutError(`invalid ref "${request.ref}"`);
  // A tag is read once and kept: tags are pinned by convention, and asking costs a round trip.
  if ((await isMirror(mirror)) && (await commitIn(mirror, rev, signal))) return rev;
  return state.fetching.run(async () => {
    if (!(await isMirror(mirror))) throw new MirrorBroken('missing');
    if (await commitIn(mirror, rev, signal)) return rev;
    const { url, auth } = gitAuth(request.repoUrl);
    const shown = redactUrl(url);
    const fetch = (what: string) => gitFetch(mirror, url, what, auth, signal);
    if (!rev.startsWith('refs/')) {
      // Servers that allow fetching by sha (git's own, GitHub, GitLab) give a commit that is on no ref.
      await fetch(rev).catch(() => undefined);
      if (await commitIn(mirror, rev, signal)) return rev;
      throw new CheckoutError(`commit ${rev} not found in ${shown}`);
    }
    const tag = await findRef({
      repoUrl: request.repoUrl,
      ref: request.ref,
      kind: 'tag',
      ...(signal && { signal }),
    });
    if (!tag.found) {
      if (tag.why === 'repository') throw new CheckoutError(tag.message);
      const branch = await findRef({
        repoUrl: request.repoUrl,
        ref: request.ref,
        kind: 'branch',
        ...(signal && { signal }),
      });
      throw new CheckoutError(
        branch.found
          ? `"${request.ref}" is a branch of ${shown}: a branch moves, so an include names a tag or a commit (40 hexadecimal digits)`
          : `no tag "${request.ref}" in ${shown}`,
      );
    }
    await fetch(`+${tag.ref}:${tag.ref}`).catch((error: unknown) => {
      throw signal?.aborted ? error : new MirrorBroken(reasonOf(error));
    });
    if (await commitIn(mirror, rev, signal)) return rev;
    throw new MirrorBroken(`${tag.ref} is not readable after a fetch`);
  });
}

/** The blob at `file` of `rev` in the mirror, read through its cat-file (bounded by `maxBytes`). */
async function fileAt(
  mirror: string,
  rev: string,
  file: string,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<MirrorFile> {
  const out = await runGit(
    ['--git-dir', mirror, 'ls-tree', '-l', '-z', rev, '--', file],
    undefined,
    signal,
    60_000,
  );
  // `<mode> <type> <sha> <size>\t<path>\0`, the size right-aligned.
  const entry = out.split('\0').find((line) => line.endsWith(`\t${file}`));
  if (entry === undefined) return { missing: `no file ${file}` };
  const [mode, , sha, size] = entry.slice(0, entry.indexOf('\t')).trim().split(/\s+/);
  if (mode === '120000') return { missing: `${file} is a symbolic link; include the file it points to` };
  if (!mode?.startsWith('100') || sha === undefined) return { missing: `${file} is not a file` };
  const bytes = Number(size);
  if (bytes > maxBytes) return { tooBig: bytes };
  const blob = await commitReaderOf(mirror).read(sha, { left: maxBytes });
  if (blob === undefined) throw new MirrorBroken(`blob ${sha} of ${file} is missing`);
  if (blob === 'too big') return { tooBig: bytes };
  return { text: blob.body.toString('utf8') };
}

/** Brings the ref (and the commit, if named) into the mirror; under the mirror's fetch lock. */
async function fetchInto(request: CheckoutRequest, mirror: string): Promise<MirrorCheckout> {
  const { ref, commit, signal } = request;
  const { url, auth } = gitAuth(request.repoUrl);
  const remote: FoundRef = await findRef({
    repoUrl: request.repoUrl,
    ref,
    ...(request.kind && { kind: request.kind }),
    ...(signal && { signal }),
  });
  if (!remote.found) throw new CheckoutError(remote.message);
  if (!(await isMirror(mirror))) throw new MirrorBroken('missing');
  // Without a commit the build takes the tip the repository just named.
  const wanted = commit ?? remote.commit;
  // The build before this one, waited for, may have fetched it.
  const known = await commitIn(mirror, wanted, signal);
  if (known) return known;
  const where = `${remote.kind} ${ref}`;
  request.log?.(`fetching ${where}${commit ? ` at ${commit.slice(0, 12)}` : ''} from ${redactUrl(url)}`);
  const fetch = (what: string) => gitFetch(mirror, url, what, auth, signal);
  // The repository just named the ref: a fetch that fails now is most likely the mirror's fault.
  await fetch(`+${remote.ref}:${remote.ref}`).catch((error: unknown) => {
    throw signal?.aborted ? error : new MirrorBroken(reasonOf(error));
  });
  const fetched = await commitIn(mirror, wanted, signal);
  if (fetched) return fetched;
  if (commit === undefined || (await commitIn(mirror, remote.ref, signal)) === undefined) {
    // The ref was fetched, yet the mirror does not have it: the mirror is at fault.
    throw new MirrorBroken(`${remote.ref} is not readable after a fetch`);
  }
  if (commit.length >= 40) {
    // No longer on the ref (force-pushed away): servers that allow fetching by SHA still have it.
    await fetch(commit).catch(() => undefined);
    const bySha = await commitIn(mirror, commit, signal);
    if (bySha) return bySha;
  }
  throw new CheckoutError(`commit ${commit} not found on ${where} of ${redactUrl(url)}`);
}

/** The commit `rev` names in the mirror, with its message and author; undefined when absent. */
async function commitIn(
  mirror: string,
  rev: string,
  signal: AbortSignal | undefined,
): Promise<MirrorCheckout | undefined> {
  // A full sha (what webhooks and triggers give) is asked of the mirror's cat-file: no fork.
  if (FULL_SHA.test(rev)) {
    const found = await commitReaderOf(mirror)
      .lookup(rev.toLowerCase())
      .catch((error: unknown) => {
        if (error instanceof CommitReaderError) return 'ask git log' as const;
        throw error;
      });
    if (found !== 'ask git log') return found;
  }
  let out: string;
  try {
    out = await runGit(
      [
        '--git-dir',
        mirror,
        'log',
        '-1',
        '--no-show-signature',
        `--format=%H%x00${COMMIT_INFO_FORMAT}`,
        '--end-of-options',
        `${rev}^{commit}`,
      ],
      undefined,
      signal,
      60_000,
    );
  } catch (error) {
    if (signal?.aborted) throw error;
    // A hostile commit's message can be larger than what is read of git's answer: the commit
    // is there all the same, and what it says is left unknown.
    if (!(error instanceof CheckoutError && /maxBuffer/i.test(error.gitLine))) return undefined;
    const sha = await runGit(
      ['--git-dir', mirror, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`],
      undefined,
      signal,
      60_000,
    ).then(
      (line) => line.trim(),
      () => '',
    );
    return COMMIT.test(sha) ? { commit: sha } : undefined;
  }
  const end = out.indexOf('\0');
  const sha = out.slice(0, end);
  if (end < 0 || !COMMIT.test(sha)) return undefined;
  return { commit: sha, info: parseCommitInfo(out.slice(end + 1)) };
}

/**
 * A shallow repository of `commit` alone at `dir` (replacing whatever is there), from the
 * mirror's objects: the git directory is written here; a small tree's files, objects and
 * index too, read through the mirror's cat-file (tree-checkout.ts: no git started), and any
 * other tree's pack and files by git. Exported for tests, which pass `objects` to see the
 * fast path fail half way.
 */
export async function makeCheckout(
  mirror: string,
  dir: string,
  commit: string,
  url: string,
  signal: AbortSignal | undefined,
  objects: ObjectSource = commitReaderOf(mirror),
): Promise<'tree' | 'git'> {
  await prepareCheckout(dir, commit, url);
  // SLIPWAY_TREE_CHECKOUT=0: git's path for every checkout (to compare, or to rule this out).
  if (!signal?.aborted && process.env.SLIPWAY_TREE_CHECKOUT !== '0' && (await treeCheckoutAllowed(mirror))) {
    try {
      await checkoutTree(objects, dir, commit);
      return 'tree';
    } catch {
      // Not a tree for this path, or cat-file failed: git's path, from a directory as fresh.
      await prepareCheckout(dir, commit, url);
    }
  }
  const git = join(dir, '.git');
  const broken = (error: unknown) => {
    throw signal?.aborted ? error : new MirrorBroken(reasonOf(error));
  };
  await Promise.all([
    runGit(
      ['--git-dir', mirror, 'pack-objects', '--revs', '--quiet', join(git, 'objects', 'pack', 'pack')],
      undefined,
      signal,
      undefined,
      {},
      // `--shallow`: the commit's tree and blobs, none of its history.
      `--shallow ${commit}\n${commit}\n`,
    ).catch(broken),
    runGit(
      ['--git-dir', mirror, '--work-tree', dir, 'read-tree', '--reset', '-u', '--end-of-options', commit],
      undefined,
      signal,
      undefined,
      // The index is the build's: the mirror is only read.
      { GIT_INDEX_FILE: join(git, 'index') },
    ).catch(broken),
  ]);
  return 'git';
}

/**
 * Whether git's configuration leaves a checkout's files as stored (see {@link configAllows}):
 * asked once per mirror; a mirror git cannot read takes git's path, where it is found broken.
 */
function treeCheckoutAllowed(mirror: string): Promise<boolean> {
  let allowed = configChecked.get(mirror);
  if (allowed === undefined) {
    allowed = runGit(['--git-dir', mirror, 'config', '-z', '--list'], undefined).then(
      (config) => configAllows(mirror, config),
      () => {
        configChecked.delete(mirror);
        return false;
      },
    );
    configChecked.set(mirror, allowed);
  }
  return allowed;
}

const configChecked = new Map<string, Promise<boolean>>();

/** `dir` made anew with the git directory of a shallow clone of `commit`, without objects. */
async function prepareCheckout(dir: string, commit: string, url: string): Promise<void> {
  const git = join(dir, '.git');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(git, 'objects', 'pack'), { recursive: true });
  await mkdir(join(git, 'refs'));
  await Promise.all([
    mkdir(join(git, 'objects', 'info')),
    mkdir(join(git, 'refs', 'heads')),
    mkdir(join(git, 'refs', 'tags')),
    writeFile(join(git, 'HEAD'), `${commit}\n`),
    // Its parents are not there: git treats it as the root, as in a --depth=1 clone.
    writeFile(join(git, 'shallow'), `${commit}\n`),
    writeFile(join(git, 'config'), checkoutConfig(url)),
  ]);
}

/** What `git clone` would write, with `origin` (never with credentials). */
function checkoutConfig(url: string): string {
  const quoted = `"${url.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return [
    '[core]',
    '\trepositoryformatversion = 0',
    '\tfilemode = true',
    '\tbare = false',
    '\tlogallrefupdates = true',
    '[remote "origin"]',
    `\turl = ${quoted}`,
    '\tfetch = +refs/heads/*:refs/remotes/origin/*',
    '',
  ].join('\n');
}

async function packsIn(mirror: string): Promise<number> {
  const names = await readdir(join(mirror, 'objects', 'pack')).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith('.pack')).length;
}

/**
 * Packs the mirror into one pack and drops what no ref reaches any more, after git's grace
 * period (two weeks): a commit force-pushed away stays buildable that long.
 */
async function gc(mirror: string): Promise<void> {
  // Its cat-file would hold the packs gc replaces.
  closeCommitReader(mirror);
  if (await isMirror(mirror)) await runGit(['--git-dir', mirror, 'gc', '--quiet'], undefined);
}

async function isMirror(mirror: string): Promise<boolean> {
  return (await stat(join(mirror, MARKER)).catch(() => undefined))?.isFile() === true;
}

/**
 * A new, empty mirror in place of whatever is at `mirror`: made aside and renamed into place,
 * so that one killed half way is never taken for a mirror (it lacks the marker).
 */
async function remake(mirror: string): Promise<void> {
  closeCommitReader(mirror);
  const aside = `${mirror}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(aside, { recursive: true, mode: 0o700 });
  try {
    await runGit(['init', '--bare', '--quiet', '--template=', aside], undefined);
    await writeFile(join(aside, 'config'), MIRROR_CONFIG, { flag: 'a' });
    await writeFile(join(aside, MARKER), 'a repository mirror of the Slipway server; safe to delete\n');
    const old = `${mirror}.old-${randomBytes(6).toString('hex')}`;
    await rename(mirror, old).catch(() => undefined);
    await rename(aside, mirror);
    await rm(old, { recursive: true, force: true });
  } finally {
    await rm(aside, { recursive: true, force: true });
  }
}

/**
 * Removes what under `root` is no mirror of a current project: mirrors of deleted projects or
 * of a project's former URL, and the leftovers of a server killed while making one. Returns
 * the names removed. Mirrors in use are not touched (a current project's is never removed).
 */
export async function pruneMirrors(root: string, projects: Array<{ id: number; repoUrl: string }>) {
  const keep = new Set(projects.map((p) => mirrorPath(root, p)));
  const names = await readdir(root).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const path = join(resolve(root), name);
    // A mirror being made again has its new and old copies beside it.
    const of = path.replace(/\.(tmp|old)-[0-9a-f]+$/, '');
    if (keep.has(path) || mirrors.get(of)?.lock.busy) continue;
    closeCommitReader(path);
    await rm(path, { recursive: true, force: true });
    mirrors.delete(path);
    removed.push(name);
  }
  return removed;
}

/** {@link pruneMirrors} for every project in the database (paged). */
export async function pruneProjectMirrors(db: Kysely<Database>, root: string): Promise<string[]> {
  const projects: Array<{ id: number; repoUrl: string }> = [];
  for (let after: string | undefined; ;) {
    const page = await listProjects(db, { limit: 1000, ...(after !== undefined && { after }) });
    projects.push(...page.map((p) => ({ id: p.id, repoUrl: p.repoUrl })));
    if (page.length < 1000) break;
    after = page[page.length - 1]!.slug;
  }
  return pruneMirrors(root, projects);
}

/** Runs {@link pruneProjectMirrors} now and every `intervalMs`; the stop function waits for a pass. */
export function startMirrorPruning(
  db: Kysely<Database>,
  root: string,
  intervalMs: number,
  onError: (error: unknown) => void,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  const pass = () => {
    running ??= pruneProjectMirrors(db, root)
      .then(() => undefined, onError)
      .finally(() => (running = undefined));
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** The mirror cannot serve the build; `message` is git's reason, or `missing`. */
class MirrorBroken extends Error {
  override name = 'MirrorBroken';
}

function reasonOf(error: unknown): string {
  return error instanceof CheckoutError ? error.gitLine : String(error);
}

interface MirrorState {
  lock: ReadWriteLock;
  fetching: Mutex;
  /** Counts re-makes, so that builds that found it broken at once re-make it once. */
  generation: number;
  /** Enough packs to gc once no checkout reads. */
  gcDue: boolean;
}

const mirrors = new Map<string, MirrorState>();

function stateOf(mirror: string): MirrorState {
  let state = mirrors.get(mirror);
  if (state === undefined) {
    state = { lock: new ReadWriteLock(), fetching: new Mutex(), generation: 0, gcDue: false };
    mirrors.set(mirror, state);
  }
  return state;
}

/** One at a time, in order. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** Many readers or one writer; a waiting writer goes before readers that come after it. */
class ReadWriteLock {
  private readers = 0;
  private writing = false;
  private writersWaiting = 0;
  private waiters: Array<() => void> = [];

  get busy(): boolean {
    return this.readers > 0 || this.writing || this.writersWaiting > 0;
  }

  async read<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writing || this.writersWaiting > 0) await this.wait();
    this.readers += 1;
    try {
      return await fn();
    } finally {
      this.readers -= 1;
      this.wake();
    }
  }

  async write<T>(fn: () => Promise<T>): Promise<T> {
    this.writersWaiting += 1;
    try {
      while (this.writing || this.readers > 0) await this.wait();
    } finally {
      this.writersWaiting -= 1;
    }
    this.writing = true;
    try {
      return await fn();
    } finally {
      this.writing = false;
      this.wake();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
