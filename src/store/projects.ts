import type { Kysely, Updateable } from 'kysely';
import { MAX_SLUG_PART_LENGTH, SLUG_PATTERN } from '../contract/project.js';
import { userRegexProblem } from '../pipeline/user-regex.js';
import { StoreError } from './errors.js';
import { runKept } from './kept-query.js';
import { serialize } from './serialize.js';
import { clampLimit, toProject } from './rows.js';
import type { Database, ProjectsTable } from './schema.js';
import { writeTransaction } from './transaction.js';
import { ACTIVE_STATUSES, CONCURRENCY_POLICIES } from './types.js';
import type { ConcurrencyPolicy, Project } from './types.js';

export interface NewProject {
  /** `owner/name`. */
  slug: string;
  repoUrl: string;
  /** Regex source; default `.*` (every ref). */
  branchFilter?: string;
  defaultExecutor?: string | null;
  defaultImage?: string | null;
  /** Default `queue`. */
  concurrencyPolicy?: ConcurrencyPolicy;
  /** Default null: only the global limit applies. */
  maxRunning?: number | null;
  /** Cap on one build's log in bytes; default null: the server's default. */
  maxLogBytes?: number | null;
  /** Default `.slipway.yml`. */
  pipelinePath?: string;
}

/** Fields of a project that can change; the slug cannot (builds and URLs refer to it). */
export type ProjectPatch = Partial<Omit<NewProject, 'slug'>>;

/** The slug rule and its limit: the shared words of src/contract/. */
export { MAX_SLUG_PART_LENGTH, SLUG_PATTERN };
const SLUG = new RegExp(SLUG_PATTERN);

/** Creates a project. Throws `conflict` when the slug is taken, `invalid` on bad values. */
export async function createProject(
  db: Kysely<Database>,
  input: NewProject,
  now: number = Date.now(),
): Promise<Project> {
  validate(input);
  const row = await db
    .insertInto('projects')
    .values({
      slug: input.slug,
      repo_url: input.repoUrl,
      branch_filter: input.branchFilter ?? '.*',
      default_executor: input.defaultExecutor ?? null,
      default_image: input.defaultImage ?? null,
      concurrency_policy: input.concurrencyPolicy ?? 'queue',
      max_running: input.maxRunning ?? null,
      max_log_bytes: input.maxLogBytes ?? null,
      pipeline_path: input.pipelinePath ?? '.slipway.yml',
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('slug').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) {
    throw new StoreError('conflict', `project ${input.slug} already exists`, {
      details: { slug: input.slug },
    });
  }
  return toProject(row);
}

export async function getProject(db: Kysely<Database>, id: number): Promise<Project | undefined> {
  const { rows } = await runKept(db, 'getProject', [id], ([projectId]) =>
    db.selectFrom('projects').selectAll().where('id', '=', projectId),
  );
  return rows[0] && toProject(rows[0]);
}

export async function getProjectBySlug(db: Kysely<Database>, slug: string): Promise<Project | undefined> {
  const row = await db.selectFrom('projects').selectAll().where('slug', '=', slug).executeTakeFirst();
  return row && toProject(row);
}

export interface ProjectListOptions {
  /** Keyset cursor: projects whose slug sorts after this one. */
  after?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

/** Projects ordered by slug. */
export async function listProjects(
  db: Kysely<Database>,
  options: ProjectListOptions = {},
): Promise<Project[]> {
  let query = db
    .selectFrom('projects')
    .selectAll()
    .orderBy('slug')
    .limit(clampLimit(options.limit, 100, 1000));
  if (options.after !== undefined) query = query.where('slug', '>', options.after);
  return (await query.execute()).map(toProject);
}

/** Changes a project's settings. Throws `not_found` or `invalid`. */
export async function updateProject(
  db: Kysely<Database>,
  id: number,
  patch: ProjectPatch,
  now: number = Date.now(),
): Promise<Project> {
  validate(patch);
  const set: Updateable<ProjectsTable> = { updated_at: now };
  if (patch.repoUrl !== undefined) set.repo_url = patch.repoUrl;
  if (patch.branchFilter !== undefined) set.branch_filter = patch.branchFilter;
  if (patch.defaultExecutor !== undefined) set.default_executor = patch.defaultExecutor;
  if (patch.defaultImage !== undefined) set.default_image = patch.defaultImage;
  if (patch.concurrencyPolicy !== undefined) set.concurrency_policy = patch.concurrencyPolicy;
  if (patch.maxRunning !== undefined) set.max_running = patch.maxRunning;
  if (patch.maxLogBytes !== undefined) set.max_log_bytes = patch.maxLogBytes;
  if (patch.pipelinePath !== undefined) set.pipeline_path = patch.pipelinePath;
  const row = await db
    .updateTable('projects')
    .set(set)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined)
    throw new StoreError('not_found', `project ${id} does not exist`, { details: { id } });
  return toProject(row);
}

/**
 * Deletes a project with all its builds and records. Throws `conflict` while one of its
 * builds is active (its executor work would be orphaned), `not_found` if there is no such
 * project. Runs under the queue lock so that no build of it is claimed meanwhile.
 */
export async function deleteProject(db: Kysely<Database>, id: number): Promise<void> {
  await writeTransaction(db, async (trx) => {
    await serialize(trx, 'queue');
    const active = await trx
      .selectFrom('builds')
      .select('id')
      .where('project_id', '=', id)
      .where('status', 'in', ACTIVE_STATUSES)
      .limit(1)
      .executeTakeFirst();
    if (active !== undefined) {
      throw new StoreError('conflict', `project ${id} has active builds; cancel them first`, {
        details: { id, buildId: active.id },
      });
    }
    const deleted = await trx.deleteFrom('projects').where('id', '=', id).executeTakeFirst();
    if (deleted.numDeletedRows === 0n) {
      throw new StoreError('not_found', `project ${id} does not exist`, { details: { id } });
    }
  });
}

function validate(input: Partial<NewProject>): void {
  if (input.slug !== undefined && !SLUG.test(input.slug)) {
    const parts = input.slug.split('/');
    if (parts.length === 2 && parts.some((part) => part.length > MAX_SLUG_PART_LENGTH)) {
      invalid(
        'slug',
        `project name is too long: owner and name may have at most ${MAX_SLUG_PART_LENGTH} characters each`,
      );
    }
    invalid('slug', `project name ${JSON.stringify(input.slug)} is not of the form owner/name`);
  }
  if (input.repoUrl !== undefined && input.repoUrl.trim() === '')
    invalid('repoUrl', 'repository URL is empty');
  if (input.branchFilter !== undefined) {
    // Refused here, where it is set, if RE2 cannot run it: receive.ts matches it with RE2.
    const problem = userRegexProblem(input.branchFilter);
    if (problem !== undefined) {
      invalid('branchFilter', `branch filter is not a valid regular expression: ${problem}`);
    }
  }
  if (input.concurrencyPolicy !== undefined && !CONCURRENCY_POLICIES.includes(input.concurrencyPolicy)) {
    invalid('concurrencyPolicy', `concurrency policy must be one of ${CONCURRENCY_POLICIES.join(', ')}`);
  }
  const max = input.maxRunning;
  if (max !== undefined && max !== null && (!Number.isInteger(max) || max < 1)) {
    invalid('maxRunning', 'maxRunning must be a positive integer or null');
  }
  const maxLog = input.maxLogBytes;
  if (maxLog !== undefined && maxLog !== null && (!Number.isSafeInteger(maxLog) || maxLog < 1024)) {
    invalid('maxLogBytes', 'maxLogBytes must be a whole number of bytes, 1024 or more, or null');
  }
  if (input.pipelinePath !== undefined && input.pipelinePath.trim() === '') {
    invalid('pipelinePath', 'pipeline path is empty');
  }
}

function invalid(field: string, message: string): never {
  throw new StoreError('invalid', message, { details: { field } });
}
