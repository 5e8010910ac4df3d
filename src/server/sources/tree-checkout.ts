/**
 * A checkout of a small tree without starting git: the commit, its trees and blobs are read
 * through the mirror's long-lived `git cat-file --batch` ({@link CommitReader.read}), the
 * files written into the build's fresh directory, the objects written as one pack into
 * its `.git`, and `.git/index` written as git writes it (version 2, stat data of the files
 * written). The result is what `pack-objects` + `read-tree --reset -u` make of the same
 * commit: the same files and modes, the same `git ls-files -s`, a clean `git status`, and a
 * repository `git fsck --full` finds whole.
 *
 * Only what it can do exactly is done: anything git would treat in a way this does not
 * copy (attributes and their filters, submodules, a configuration that converts or writes
 * links as files), any name git's own path checks would refuse, a mode other than git's
 * four, more than {@link TreeLimits} of entries or bytes, an object not as asked: for all
 * these it gives a reason and the caller takes git's path (which refuses what git refuses).
 * A hostile repository's huge tree is never held: reads stop at the byte budget.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, symlinkSync, writeFileSync, type BigIntStats } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { performance } from 'node:perf_hooks';
import { deflate as deflateCallback, deflateSync } from 'node:zlib';
import type { RawObject, ReadBudget } from './commit-reader.js';

const deflate = promisify(deflateCallback);

/** Where objects are read: the mirror's cat-file ({@link CommitReader}) in the server. */
export interface ObjectSource {
  /** The object whole within `budget`, 'too big' past it, undefined when missing; may reject. */
  read(sha: string, budget: ReadBudget): Promise<RawObject | 'too big' | undefined>;
}

/** What is checked out this way at most; a larger tree takes git's path. */
export interface TreeLimits {
  /** Tree entries, directories included. */
  entries: number;
  /** Bytes of all objects read: the commit, trees and blobs. */
  bytes: number;
}

export const TREE_LIMITS: TreeLimits = { entries: 1000, bytes: 8 * 1024 * 1024 };

/** A file of the checkout: its path under the directory, git mode and blob. */
interface FileEntry {
  path: string;
  mode: '100644' | '100755' | '120000';
  sha: string;
}

/** Why this path cannot check the commit out exactly; git's path is taken. */
export class NotHere extends Error {
  override name = 'NotHere';
}

/** A body larger than this is written, compressed and hashed off this thread or in parts. */
const LARGE = 64 * 1024;
/** Work on this thread between two turns of the event loop, at most about this long. */
const SLICE_MS = 2;
const SHA1 = /^[0-9a-f]{40}$/;
const MODES = new Set<string>(['40000', '100644', '100755', '120000']);
type Mode = '40000' | FileEntry['mode'];
/** Code points HFS+ ignores in names: git's `core.protectHFS` checks names without them. */
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/**
 * Writes `commit`'s files into `dir`, its objects and index into `dir/.git` (already made, as
 * {@link makeCheckout} makes it: HEAD, shallow, config, an empty `objects/`). Throws a
 * {@link NotHere} with the reason when the commit does not qualify, and whatever reading or
 * writing threw (a {@link CommitReaderError} when cat-file died): in both cases `dir` may
 * hold part of the work and is to be removed before git's path. Never writes outside `dir`
 * and never through a link: every file is created new (`wx`) in directories it made.
 */
export async function checkoutTree(
  source: ObjectSource,
  dir: string,
  commit: string,
  limits: TreeLimits = TREE_LIMITS,
): Promise<void> {
  if (!SHA1.test(commit)) throw new NotHere('not a SHA-1 commit');
  const budget: ReadBudget = { left: limits.bytes };
  const objects = new Map<string, RawObject>();
  const read = async (sha: string, type: string): Promise<RawObject> => {
    const object = await source.read(sha, budget);
    if (object === undefined) throw new NotHere(`${type} ${sha} is missing`);
    if (object === 'too big') throw new NotHere(`more than ${limits.bytes} bytes`);
    if (object.type !== type) throw new NotHere(`${sha} is a ${object.type}, not a ${type}`);
    // cat-file answered for this sha: anything else is a wrong answer, never written.
    if ((await hashOf(object)) !== sha) throw new NotHere(`cat-file's ${type} ${sha} does not hash to it`);
    objects.set(sha, object);
    return object;
  };

  const commitObject = await read(commit, 'commit');
  const tree = /^tree ([0-9a-f]{40})\n/.exec(commitObject.body.toString('latin1', 0, 46))?.[1];
  if (tree === undefined) throw new NotHere('a commit without a tree line');

  // The trees level by level, each level's trees asked of cat-file at once.
  const files: FileEntry[] = [];
  let entries = 0;
  for (let level: Array<{ prefix: string; sha: string }> = [{ prefix: '', sha: tree }]; level.length > 0;) {
    const next: typeof level = [];
    const trees = await Promise.all(
      level.map(async ({ prefix, sha }) => ({
        prefix,
        object: objects.get(sha) ?? (await read(sha, 'tree')),
      })),
    );
    for (const { prefix, object } of trees) {
      const parsed = parseTree(object.body, limits.entries - entries);
      if (parsed === 'too many') throw new NotHere(`more than ${limits.entries} entries`);
      entries += parsed.length;
      for (const entry of parsed) {
        const path = prefix + entry.name;
        if (entry.mode === '40000') next.push({ prefix: `${path}/`, sha: entry.sha });
        else files.push({ path, mode: entry.mode, sha: entry.sha });
      }
    }
    level = next;
  }
  const blobs = [...new Set(files.map((file) => file.sha))];
  await Promise.all(blobs.map((sha) => read(sha, 'blob')));

  // Only directories that hold a file: git makes no directory for a tree of empty trees.
  const dirs = new Set<string>();
  for (const { path } of files)
    for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1))
      dirs.add(path.slice(0, slash));
  const slices = new Slices();
  for (const path of [...dirs].sort((a, b) => depthOf(a) - depthOf(b)))
    await slices.step(() => mkdirSync(join(dir, path)));
  for (const { path, mode, sha } of files) {
    const body = objects.get(sha)!.body;
    const to = join(dir, path);
    const options = { flag: 'wx', mode: mode === '100755' ? 0o777 : 0o666 };
    if (mode === '120000') await slices.step(() => symlinkSync(body, to));
    else if (body.length > LARGE) await writeFile(to, body, options);
    else await slices.step(() => writeFileSync(to, body, options));
  }
  const git = join(dir, '.git');
  await writePack(git, objects, slices);
  const index = await indexOf(dir, files, slices);
  await slices.step(() => writeFileSync(join(git, 'index'), index, { flag: 'wx' }));
}

/**
 * The entries of a tree object, each checked as git's read-tree and fsck would check it:
 * in git's order without duplicates, one of git's four modes (a gitlink is a submodule), a
 * name git accepts for a path of a checkout and that this path writes as is. Stops at the
 * entry after `most`: a hostile tree of millions of entries is not read through.
 */
function parseTree(
  body: Buffer,
  most: number,
): Array<{ mode: Mode; name: string; sha: string }> | 'too many' {
  const entries: Array<{ mode: Mode; name: string; sha: string }> = [];
  const names = new Set<string>();
  let previous: Buffer | undefined;
  for (let at = 0; at < body.length;) {
    if (entries.length === most) return 'too many';
    const space = body.indexOf(0x20, at);
    const nul = space < 0 ? -1 : body.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > body.length) throw new NotHere('an unreadable tree');
    const mode = body.toString('latin1', at, space);
    const rawName = body.subarray(space + 1, nul);
    const sha = body.toString('hex', nul + 1, nul + 21);
    at = nul + 21;
    if (mode === '160000') throw new NotHere('a submodule');
    if (!MODES.has(mode)) throw new NotHere(`an entry of mode ${mode}`);
    const name = rawName.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(rawName)) throw new NotHere('a name that is not UTF-8');
    const refused = refusedName(name, mode === '120000');
    if (refused !== undefined) throw new NotHere(refused);
    if (names.has(name)) throw new NotHere(`the name "${name}" twice in a tree`);
    names.add(name);
    // git's tree order: a tree's name compares as if it ended in '/'.
    const key = mode === '40000' ? Buffer.concat([rawName, Buffer.from('/')]) : rawName;
    if (previous !== undefined && Buffer.compare(previous, key) >= 0) throw new NotHere('an unsorted tree');
    previous = key;
    entries.push({ mode: mode as Mode, name, sha });
  }
  return entries;
}

/**
 * Why git would not check out `name`, or handle it in a way this path does not copy;
 * undefined for a name written as is. git's checks (verify_path with core.protectNTFS, on by
 * default, and core.protectHFS, which a configuration may turn on) are followed broadly.
 */
function refusedName(name: string, link: boolean): string | undefined {
  if (name === '' || name === '.' || name === '..') return `an entry named "${name}"`;
  if (/[/\\\0]/.test(name)) return 'a name with a slash, a backslash or NUL';
  const bare = name.replace(HFS_IGNORABLE, '').toLowerCase();
  if (/^\.git[. ]*(?::|$)/.test(bare) || /^git~\d/.test(bare)) return 'an entry named .git';
  if (bare.startsWith('.gitattributes')) return 'a .gitattributes file';
  if (link && (bare.startsWith('.gitmodules') || /^(?:gitmod|gi7eba)~\d/.test(bare)))
    return 'a .gitmodules link';
  return undefined;
}

/** Pack object types (git's `enum object_type`). */
const PACK_TYPES: Record<string, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/**
 * Every object into one pack with its index (version 2), `objects/pack/pack-<sha>.{pack,idx}`,
 * read-only as git writes them: two files, where loose objects cost a file and often a
 * directory each (file creation is most of this path's cost on a busy disk). Whole objects,
 * no deltas, compressed at level 1 (git's default for loose objects: speed over size).
 */
async function writePack(git: string, objects: Map<string, RawObject>, slices: Slices): Promise<void> {
  const entries: Array<{ sha: Buffer; offset: number; crc: number }> = [];
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(objects.size, 8);
  const parts: Buffer[] = [head];
  let offset = head.length;
  const zlib = { level: 1 };
  for (const [sha, object] of objects) {
    // The type and the size, 4 bits then 7 bits a byte, low bits first.
    const header: number[] = [];
    let size = object.body.length;
    let byte = (PACK_TYPES[object.type]! << 4) | (size & 0x0f);
    for (size = Math.floor(size / 16); size > 0; size = Math.floor(size / 128)) {
      header.push(byte | 0x80);
      byte = size & 0x7f;
    }
    header.push(byte);
    const zipped =
      object.body.length > LARGE
        ? await deflate(object.body, zlib)
        : await slices.step(() => deflateSync(object.body, zlib));
    const packed = Buffer.concat([Buffer.from(header), zipped]);
    entries.push({ sha: Buffer.from(sha, 'hex'), offset, crc: crc32(packed) });
    parts.push(packed);
    offset += packed.length;
  }
  const body = Buffer.concat(parts);
  const checksum = createHash('sha1').update(body).digest();
  const pack = Buffer.concat([body, checksum]);

  entries.sort((a, b) => Buffer.compare(a.sha, b.sha));
  const idx = Buffer.alloc(8 + 256 * 4 + entries.length * 28 + 40);
  idx.writeUInt32BE(0xff744f63, 0);
  idx.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const { sha } of entries) fanout[sha[0]!]! += 1;
  for (let i = 0, total = 0; i < 256; i++) idx.writeUInt32BE((total += fanout[i]!), 8 + i * 4);
  let at = 8 + 256 * 4;
  for (const { sha } of entries) at += sha.copy(idx, at);
  for (const { crc } of entries) at = idx.writeUInt32BE(crc, at);
  for (const { offset } of entries) at = idx.writeUInt32BE(offset, at);
  at += checksum.copy(idx, at);
  createHash('sha1').update(idx.subarray(0, at)).digest().copy(idx, at);

  const name = join(git, 'objects', 'pack', `pack-${checksum.toString('hex')}`);
  const options = { flag: 'wx', mode: 0o444 };
  if (pack.length > LARGE) await writeFile(`${name}.pack`, pack, options);
  else await slices.step(() => writeFileSync(`${name}.pack`, pack, options));
  // The index last: git takes a pack for one once its index is there.
  await slices.step(() => writeFileSync(`${name}.idx`, idx, options));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as zlib computes it (`zlib.crc32` is not in every Node 20). */
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * `.git/index` for `files`, as read-tree writes it (version 2, no extension): one entry per
 * file in the order of its path's bytes, with the stat data of the file as written, so that
 * git takes it as unchanged; a SHA-1 of it all at the end.
 */
async function indexOf(dir: string, files: FileEntry[], slices: Slices): Promise<Buffer> {
  const named = files
    .map((file) => ({ ...file, name: Buffer.from(file.path, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.name, b.name));
  const stats: BigIntStats[] = [];
  for (const { path } of named)
    stats.push(await slices.step(() => lstatSync(join(dir, path), { bigint: true })));
  const parts: Buffer[] = [];
  const head = Buffer.alloc(12);
  head.write('DIRC', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(named.length, 8);
  parts.push(head);
  named.forEach(({ name, mode, sha }, i) => {
    const s = stats[i]!;
    // 62 bytes of fixed fields, the name, then 1 to 8 NULs to a multiple of 8.
    const entry = Buffer.alloc((62 + name.length + 8) & ~7);
    const u32 = (value: bigint, at: number) => entry.writeUInt32BE(Number(value & 0xffffffffn), at);
    u32(s.ctimeNs / 1_000_000_000n, 0);
    u32(s.ctimeNs % 1_000_000_000n, 4);
    u32(s.mtimeNs / 1_000_000_000n, 8);
    u32(s.mtimeNs % 1_000_000_000n, 12);
    u32(s.dev, 16);
    u32(s.ino, 20);
    entry.writeUInt32BE(parseInt(mode, 8), 24);
    u32(s.uid, 28);
    u32(s.gid, 32);
    u32(s.size, 36);
    entry.write(sha, 40, 'hex');
    entry.writeUInt16BE(Math.min(name.length, 0xfff), 60);
    name.copy(entry, 62);
    parts.push(entry);
  });
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function headerOf(object: RawObject): Buffer {
  return Buffer.from(`${object.type} ${object.body.length}\0`, 'latin1');
}

/** The object's sha-1, a large body hashed in parts with the event loop served between them. */
async function hashOf(object: RawObject): Promise<string> {
  const hash = createHash('sha1').update(headerOf(object));
  for (let at = 0; at < object.body.length; at += LARGE) {
    if (at > 0) await yieldNow();
    hash.update(object.body.subarray(at, at + LARGE));
  }
  return hash.digest('hex');
}

/**
 * Small file-system work done on this thread: a few microseconds each, cheaper than a trip
 * through libuv's pool per call (which on a busy machine waits for a thread each time); the
 * event loop is served every {@link SLICE_MS}. Large bodies go through the pool instead.
 */
class Slices {
  private since = performance.now();

  async step<T>(work: () => T): Promise<T> {
    const result = work();
    if (performance.now() - this.since >= SLICE_MS) {
      await yieldNow();
      this.since = performance.now();
    }
    return result;
  }
}

function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function depthOf(path: string): number {
  let depth = 0;
  for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) depth++;
  return depth;
}

/**
 * Whether git's configuration and attribute files seen by a checkout from `gitDir` leave the
 * files as stored: no line-ending conversion (core.autocrlf), links written as links
 * (core.symlinks), no sparse checkout and no attributes from outside the tree (the tree's own
 * `.gitattributes` are checked by {@link checkoutTree}). `config` is `git config -z --list`.
 */
export async function configAllows(gitDir: string, config: string): Promise<boolean> {
  const values = new Map<string, string>();
  for (const item of config.split('\0')) {
    const nl = item.indexOf('\n');
    values.set((nl < 0 ? item : item.slice(0, nl)).toLowerCase(), nl < 0 ? 'true' : item.slice(nl + 1));
  }
  const falsy = (value: string | undefined) => value === undefined || /^(?:false|no|off|0|)$/i.test(value);
  const autocrlf = values.get('core.autocrlf');
  if (!(falsy(autocrlf) || autocrlf?.toLowerCase() === 'input')) return false;
  const symlinks = values.get('core.symlinks');
  if (symlinks !== undefined && !/^(?:true|yes|on|1)$/i.test(symlinks)) return false;
  if (!falsy(values.get('core.sparsecheckout')) || values.has('core.attributesfile')) return false;
  const xdg = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  const attributeFiles = [join(xdg, 'git', 'attributes'), join(gitDir, 'info', 'attributes')];
  if (!process.env.GIT_ATTR_NOSYSTEM) attributeFiles.push('/etc/gitattributes', '/usr/etc/gitattributes');
  const found = await Promise.all(
    attributeFiles.map((path) =>
      stat(path).then(
        () => true,
        () => false,
      ),
    ),
  );
  return !found.includes(true);
}
