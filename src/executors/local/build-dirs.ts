import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * On-disk layout of one build of the local executor, all under `tmpRoot`:
 *
 *   slipway-<safe id>-<hash>/        build root, found again by name after a crash
 *     .slipway-build.json           marker: which build, project, owning process
 *     scripts/                      step and service scripts (outside the workspace)
 *     steps/                        one directory per step attempt: record, output, exit (step-files.ts)
 *     pids/                         process groups of steps and services (leftovers.ts)
 *     workspace/                    the workspace (unless a fixed `workdir` is used)
 */
export const ROOT_PREFIX = 'slipway-';
export const MARKER_FILE = '.slipway-build.json';

/** Contents of the marker file. */
export interface BuildMarker {
  buildId: string;
  project: string;
  branch: string;
  workspace: string;
  /** Process that prepared the build, for people reading the file. */
  pid: number;
  createdAt: string;
}

/**
 * Directory name of a build's root. Readable for people (sanitized id) and unique per id (a
 * hash of the raw id, since sanitizing can map two ids to one name). Never contains `/`.
 */
export function buildRootName(buildId: string): string {
  const safe = buildId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(buildId).digest('hex').slice(0, 10);
  return `${ROOT_PREFIX}${safe}-${hash}`;
}

export async function writeMarker(root: string, marker: BuildMarker): Promise<void> {
  await writeFile(join(root, MARKER_FILE), JSON.stringify(marker, null, 2) + '\n', { mode: 0o600 });
}

/**
 * Build roots under `tmpRoot` with a valid marker whose name matches its build id; anything
 * else named `slipway-*` (other tools, half-written dirs) is not ours to report or remove.
 */
export async function scanBuildRoots(tmpRoot: string): Promise<{ root: string; marker: BuildMarker }[]> {
  let names: string[];
  try {
    names = (await readdir(tmpRoot, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && e.name.startsWith(ROOT_PREFIX))
      .map((e) => e.name);
  } catch {
    return [];
  }
  const found = await Promise.all(
    names.map(async (name) => {
      const root = join(tmpRoot, name);
      const marker = await readMarker(root);
      return marker && buildRootName(marker.buildId) === name ? { root, marker } : undefined;
    }),
  );
  return found.filter((f) => f !== undefined);
}

/** The marker of a build root, if it has a valid one. */
export async function readMarker(root: string): Promise<BuildMarker | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(join(root, MARKER_FILE), 'utf8'));
    return isMarker(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isMarker(value: unknown): value is BuildMarker {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.buildId === 'string' && typeof v.project === 'string' && typeof v.workspace === 'string';
}

/**
 * `rm -rf` that also copes with read-only directories builds leave behind (Go's module
 * cache, `chmod -w` in tests), which a plain recursive rm cannot empty.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    if (!isCode(err, 'EACCES') && !isCode(err, 'EPERM')) throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  }
}

async function makeWritable(dir: string): Promise<void> {
  try {
    await chmod(dir, 0o700);
    const entries = await readdir(dir, { withFileTypes: true });
    await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => makeWritable(join(dir, e.name))));
  } catch {
    // Best effort: the retried rm reports what is still in the way.
  }
}

export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
