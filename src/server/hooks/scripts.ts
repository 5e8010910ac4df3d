import { chmod, lstat, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import type { Kysely } from 'kysely';
import { stringify } from 'yaml';
import {
  updateProject,
  writeTransaction,
  type Build,
  type Database,
  type Project,
} from '../../store/index.js';
import { userRegexProblem } from '../../pipeline/user-regex.js';
import { checkout, CheckoutError } from '../sources/git-checkout.js';
import { HookError } from './errors.js';
import {
  getHookSettings,
  isRepoUrl,
  saveScriptsSnapshot,
  type ScriptsSnapshot,
  type ScriptsSource,
} from './store.js';

/**
 * Build-scripts repositories: a project may keep its build logic in a separate repository,
 * as `<path>/project.json` (the descriptor) and `<path>/build.sh`. A refresh fetches them,
 * validates the descriptor, applies it to the project (image, branch filter, repository URL)
 * and keeps a snapshot of both files; builds of the project then run that `build.sh` as a
 * one-step pipeline with the usual `SLIPWAY_*` variables.
 */

/** What `project.json` may say; every field is optional. */
export interface ScriptsDescriptor {
  /** Container image `build.sh` runs in (the project's default image). */
  image?: string;
  /** Branch filter regex (anchored) for pushes (the project's branch filter). */
  branches?: string;
  /** Git URL of the code repository the builds check out (the project's repository URL). */
  repo?: string;
}

export const DESCRIPTOR_FILE = 'project.json';
export const SCRIPT_FILE = 'build.sh';
/** Where a build finds the script in its workspace. */
export const SCRIPT_DIR = '.slipway-scripts';
const MAX_DESCRIPTOR_BYTES = 64 * 1024;
const MAX_SCRIPT_BYTES = 256 * 1024;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$/;
const FIELDS = ['image', 'branches', 'repo'] as const;

/** Checks a descriptor's text; throws `HookError('invalid_descriptor')` that says what is wrong and where. */
export function parseDescriptor(source: string, file = DESCRIPTOR_FILE): ScriptsDescriptor {
  const bad = (message: string, field?: string) =>
    new HookError(
      422,
      'invalid_descriptor',
      `${file}: ${message}`,
      'invalid_descriptor',
      field === undefined ? { file } : { file, field },
    );
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    throw bad(`not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw bad('expected a JSON object such as {"image": "node:20", "branches": "main", "repo": "https://…"}');
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw bad(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${FIELDS.join(', ')})`,
      unknown[0],
    );
  const descriptor: ScriptsDescriptor = {};
  for (const key of FIELDS) {
    const v = record[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.trim() === '') throw bad(`"${key}" must be a non-empty string`, key);
    descriptor[key] = v.trim();
  }
  if (descriptor.image !== undefined && !IMAGE.test(descriptor.image)) {
    throw bad(
      `"image" ${JSON.stringify(descriptor.image)} is not an image reference (e.g. node:20, registry.example.com/team/builder:1.2)`,
      'image',
    );
  }
  if (descriptor.branches !== undefined) {
    // It becomes the project's branch filter: checked as receive.ts will match it (RE2).
    const problem = userRegexProblem(descriptor.branches);
    if (problem !== undefined)
      throw bad(`"branches" is not a valid regular expression: ${problem}`, 'branches');
  }
  if (descriptor.repo !== undefined && !isRepoUrl(descriptor.repo)) {
    throw bad(
      `"repo" ${JSON.stringify(descriptor.repo)} is not a git repository URL (https://, ssh://, git://, file:// or user@host:path)`,
      'repo',
    );
  }
  return descriptor;
}

export interface RefreshOptions {
  /** Where the scripts repository is fetched to (a temporary folder below it); default the OS temp dir. */
  workRoot?: string;
  signal?: AbortSignal;
  now?: number;
}

export interface RefreshResult {
  project: Project;
  snapshot: ScriptsSnapshot;
}

/**
 * Fetches the project's build-scripts repository with real git, validates `project.json` and
 * `build.sh`, then in one transaction applies the descriptor to the project and stores the
 * snapshot. Nothing changes when anything is wrong. Throws `HookError`:
 * `invalid_descriptor` (422), `scripts_unavailable` (502), or `invalid_request` (400) when the
 * project has no scripts repository.
 */
export async function refreshScripts(
  db: Kysely<Database>,
  project: Project,
  options: RefreshOptions = {},
): Promise<RefreshResult> {
  const settings = await getHookSettings(db, project.id);
  const source = settings.scripts;
  if (source === null) {
    throw new HookError(
      400,
      'invalid_request',
      `project ${project.slug} has no build-scripts repository`,
      undefined,
      { project: project.slug },
    );
  }
  const root = options.workRoot ?? tmpdir();
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(join(root, 'slipway-scripts-'));
  try {
    const files = await fetchScripts(source, dir, options.signal);
    const now = options.now ?? Date.now();
    const snapshot: ScriptsSnapshot = {
      commit: files.commit,
      descriptor: { ...files.descriptor },
      buildSh: files.buildSh,
      refreshedAt: now,
    };
    const updated = await writeTransaction(db, async (trx) => {
      const { image, branches, repo } = files.descriptor;
      const changed =
        image === undefined && branches === undefined && repo === undefined
          ? project
          : await updateProject(
              trx,
              project.id,
              {
                ...(image !== undefined && { defaultImage: image }),
                ...(branches !== undefined && { branchFilter: branches }),
                ...(repo !== undefined && { repoUrl: repo }),
              },
              now,
            );
      await saveScriptsSnapshot(trx, project.id, snapshot);
      return changed;
    });
    return { project: updated, snapshot };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function fetchScripts(
  source: ScriptsSource,
  dir: string,
  signal: AbortSignal | undefined,
): Promise<{ commit: string; descriptor: ScriptsDescriptor; buildSh: string }> {
  let commit: string;
  try {
    ({ commit } = await checkout({
      repoUrl: source.repoUrl,
      ref: source.ref,
      kind: 'branch',
      dir,
      ...(signal && { signal }),
    }));
  } catch (error) {
    const why = error instanceof CheckoutError ? error.message : String(error);
    throw new HookError(
      502,
      'scripts_unavailable',
      `cannot fetch branch ${source.ref} of the build-scripts repository: ${why}`,
      'scripts_unavailable',
    );
  }
  const folder = source.path === '.' ? '' : `${source.path}/`;
  const descriptorText = await readInside(dir, `${folder}${DESCRIPTOR_FILE}`, MAX_DESCRIPTOR_BYTES);
  const descriptor = parseDescriptor(descriptorText, `${folder}${DESCRIPTOR_FILE}`);
  const buildSh = await readInside(dir, `${folder}${SCRIPT_FILE}`, MAX_SCRIPT_BYTES);
  return { commit, descriptor, buildSh };
}

/** Reads a file of the checkout, refusing symlinks that lead out of it and files over `limit`. */
async function readInside(dir: string, file: string, limit: number): Promise<string> {
  const missing = () =>
    new HookError(
      422,
      'invalid_descriptor',
      `${file} is missing from the build-scripts repository`,
      'invalid_descriptor',
      { file },
    );
  let real: string;
  try {
    real = await realpath(join(dir, file));
  } catch {
    throw missing();
  }
  const root = await realpath(dir);
  if (!real.startsWith(root + sep)) {
    throw new HookError(
      422,
      'invalid_descriptor',
      `${file} is a link that leaves the build-scripts repository`,
      'invalid_descriptor',
      { file },
    );
  }
  const info = await lstat(real);
  if (!info.isFile()) throw missing();
  if (info.size > limit) {
    throw new HookError(
      422,
      'invalid_descriptor',
      `${file} is ${info.size} bytes; at most ${limit} are accepted`,
      'invalid_descriptor',
      { file },
    );
  }
  return readFile(real, 'utf8');
}

/** The pipeline a build-scripts project's build runs: `build.sh` as one step of one stage. */
export function scriptsPipeline(descriptor: ScriptsDescriptor): string {
  return stringify({
    ...(descriptor.image !== undefined && { image: descriptor.image }),
    stages: [
      { name: 'build', steps: [{ name: SCRIPT_FILE, commands: [`sh ./${SCRIPT_DIR}/${SCRIPT_FILE}`] }] },
    ],
  });
}

/** A pipeline that does not come from the checkout's `.slipway.yml`: its name (for messages) and text. */
export interface PipelineSource {
  file: string;
  source: string;
}

/**
 * The `pipelineSource` hook of the build runner for build-scripts projects: for a project with
 * a scripts repository it writes the snapshot's `build.sh` into the checkout as
 * `.slipway-scripts/build.sh` and returns the one-step pipeline that runs it; for any other
 * project it returns undefined (the checkout's `.slipway.yml` is used). A project that was
 * never refreshed is refreshed first. Throws with a message for the build log when the
 * scripts cannot be had.
 */
export function scriptsPipelineSource(
  db: Kysely<Database>,
  options: RefreshOptions = {},
): (project: Project, build: Build, sourceDir: string) => Promise<PipelineSource | undefined> {
  return async (project, _build, sourceDir) => {
    const settings = await getHookSettings(db, project.id);
    if (settings.scripts === null) return undefined;
    const snapshot = settings.snapshot ?? (await refreshScripts(db, project, options)).snapshot;
    const folder = join(sourceDir, SCRIPT_DIR);
    await mkdir(folder, { recursive: true });
    const script = join(folder, SCRIPT_FILE);
    await writeFile(script, snapshot.buildSh);
    await chmod(script, 0o755);
    const source = scriptsPipeline(snapshot.descriptor);
    await writeFile(join(folder, 'pipeline.yml'), source);
    const where = settings.scripts.path === '.' ? '' : `${settings.scripts.path}/`;
    return { file: `${where}${SCRIPT_FILE} (build-scripts ${snapshot.commit.slice(0, 12)})`, source };
  };
}
