/**
 * `cacheFiles.out` of the kubernetes executor: a step's cache paths leave the pod as artifacts
 * do (`collect-files.ts`), through the log of a `collect-…` ephemeral container (helper image)
 * that tars them. It mounts the workspace at `/slipway/out/w` and the caches volume at
 * `/slipway/out/c`, both read-only, and tars, from `/slipway/out`, `w/<path>` for workspace
 * paths and `c/<step dir>/keep/<path>` for the `~/` paths the step kept (see ../cache-home.ts),
 * so that the tar unpacks into `dir/w` and `dir/c/…/keep`, which becomes `dir/h`.
 *
 * A path is read only when every component above it is a real directory (not a symlink); tar
 * never follows the path itself nor anything below it. The container stops after the bytes a
 * save may take (plus headers), and Slipway stops reading at `limits` (`unpackWithin`): a
 * sparse terabyte costs neither the server's disk nor hours of the pod's CPU.
 */
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { cacheStepDir, isHomePath } from '../cache-home.js';
import { CopyBudget, unpackWithin } from '../cache-unpack.js';
import { ExecutorError, type PreparedCache } from '../types.js';
import { CollectRunner, type CollectPodOptions } from './collect-files.js';
import { CACHES_VOLUME, literalArgs, WORKSPACE_VOLUME, type CacheRestore } from './manifests/index.js';
import { packCacheRestore } from './seed.js';
import { formatBytes } from '../../contract/bytes.js';

const OUT_DIR = '/slipway/out';
const MARK = 'slipway-collect: ';
/** Tar bytes per entry the container lets through beyond the content (headers, long names). */
const HEADER_ALLOWANCE = 3 * 1024;

/**
 * The copy-out container's command (`/bin/sh -c SCRIPT slipway-cache-out <cap> <path>…`), POSIX
 * sh with busybox's tar, head, base64 and awk. It prints what COLLECT_SCRIPT prints (base64
 * lines, the end marker with the byte count and tar's status), so `CollectRunner` reads it.
 */
export const CACHE_OUT_SCRIPT = `cap=$1; shift
cd ${OUT_DIR} || { echo "${MARK}end 0 cd"; exit 2; }
n=$#; i=0
while [ "$i" -lt "$n" ]; do
  p=$1; shift; i=$((i+1))
  q=; rest=$p; ok=1
  while :; do
    c=\${rest%%/*}
    if [ "$c" = "$rest" ]; then rest=; else rest=\${rest#*/}; fi
    q=\${q:+$q/}$c
    [ -z "$rest" ] && break
    if [ -L "$q" ] || [ ! -d "$q" ]; then ok=; break; fi
  done
  if [ -n "$ok" ] && { [ -e "$q" ] || [ -L "$q" ]; }; then set -- "$@" "$q"; fi
done
if [ "$#" -eq 0 ]; then echo "${MARK}end 0 0"; exit 0; fi
exec 3>&1
out=$( { { tar -cf - -- "$@" 2>&4; echo "tar $?" >&4; } | head -c "$cap" | base64 | awk '{ print; n += int(length($0) / 4) * 3 - gsub(/=/, "=") } END { printf "%d\\n", n > "/dev/stderr" }' 2>&4 >&3; } 4>&1 )
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

/** See the file's comment; resolves with the `paths` (as given) that existed. */
export async function copyCacheOut(
  options: CollectPodOptions,
  step: string,
  paths: readonly string[],
  dir: string,
  limits: { maxBytes: number; maxEntries: number },
  signal?: AbortSignal,
): Promise<string[]> {
  const stepDir = cacheStepDir('c', step);
  const wanted = paths.map((path) => {
    const home = isHomePath(path);
    const rel = home ? path.replace(/^~\/?/, '') : path;
    // The compiler refuses these; never let one reach a path on this host.
    if (
      rel.startsWith('/') ||
      rel.split('/').some((part) => part === '..' || (part === '' && rel !== '')) ||
      (!home && rel === '')
    )
      throw new ExecutorError(
        'workspace',
        `cache path ${JSON.stringify(path)} refused: not a plain relative path`,
      );
    return {
      path,
      inPod: home ? (rel === '' ? `${stepDir}/keep` : `${stepDir}/keep/${rel}`) : `w/${rel}`,
      local: home ? join(dir, 'h', rel) : join(dir, 'w', rel),
    };
  });
  if (wanted.length === 0) return [];
  const cap = limits.maxBytes + limits.maxEntries * HEADER_ALLOWANCE + 1024 * 1024;
  const runner = new CollectRunner(options, signal);
  const tar = await runner.open(
    {
      command: literalArgs([
        '/bin/sh',
        '-c',
        CACHE_OUT_SCRIPT,
        'slipway-cache-out',
        String(cap),
        ...wanted.map((w) => w.inPod),
      ]),
      volumeMounts: [
        { name: WORKSPACE_VOLUME, mountPath: `${OUT_DIR}/w`, readOnly: true },
        { name: CACHES_VOLUME, mountPath: `${OUT_DIR}/c`, readOnly: true },
      ],
    },
    [],
  );
  try {
    try {
      await unpackWithin(Readable.from(tar.chunks), dir, new CopyBudget(limits), signal);
    } catch (error) {
      // Over the budget: the budget's own words. Else the container's failure, if it had one.
      if (error instanceof ExecutorError) throw error;
      signal?.throwIfAborted();
      throw await tar.failure(error);
    }
    const problem = await tar.check();
    if (problem) throw problem;
  } finally {
    await tar.close();
  }
  const kept = join(dir, stepDir, 'keep');
  if (await exists(kept)) {
    await rm(join(dir, 'h'), { recursive: true, force: true });
    await rename(kept, join(dir, 'h'));
  }
  await rm(join(dir, 'c'), { recursive: true, force: true });
  await mkdir(join(dir, 'w'), { recursive: true });
  const copied: string[] = [];
  for (const w of wanted) if (await exists(w.local)) copied.push(w.path);
  return copied;
}

/**
 * A build's cache restores (`BuildSpec.caches`) packed for the `seed` container, within
 * `maxBytes` (gzip'd, all of them together: they go through etcd); one that does not fit, or
 * cannot be packed, is left out and told (`dropped`).
 */
export async function packRestores(
  caches: readonly PreparedCache[],
  maxBytes: number,
  signal?: AbortSignal,
): Promise<CacheRestore[]> {
  let left = maxBytes;
  const restores: CacheRestore[] = [];
  for (const cache of caches) {
    let archive: Buffer | undefined;
    try {
      archive = await packCacheRestore(cache.dir, left, signal);
    } catch (error) {
      if (signal?.aborted) throw new ExecutorError('internal', 'cancelled while preparing the build');
      cache.dropped(
        `it could not be packed for the build pod: ${error instanceof Error ? error.message : String(error)}`,
      );
      continue;
    }
    if (archive === undefined) {
      cache.dropped(
        `it is more than the ${formatBytes(left)} left of the ${formatBytes(maxBytes)} the kubernetes executor passes into a build pod`,
      );
      continue;
    }
    left -= archive.length;
    restores.push({ step: cache.step, archive });
  }
  return restores;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
