import type { Kysely } from 'kysely';
import { createBuild } from '../builds.js';
import type { NewBuild } from '../builds.js';
import { createProject } from '../projects.js';
import type { NewProject } from '../projects.js';
import type { Database } from '../schema.js';
import type { Build, Project } from '../types.js';

let counter = 0;

/** A project with a unique slug unless one is given. */
export function makeProject(db: Kysely<Database>, overrides: Partial<NewProject> = {}): Promise<Project> {
  counter += 1;
  return createProject(db, {
    slug: `acme/p${counter}-${process.pid}`,
    repoUrl: 'https://git.example/acme/web.git',
    ...overrides,
  });
}

/** A queued manual build of `main` unless told otherwise. */
export function makeBuild(
  db: Kysely<Database>,
  projectId: number,
  overrides: Partial<NewBuild> = {},
  now?: number,
): Promise<Build> {
  return createBuild(
    db,
    { projectId, branch: 'main', event: 'manual', trigger: 'manual', ...overrides },
    now,
  );
}
