/**
 * How the server reads a build's `include:` files. Files of the build's own repository come
 * from its checkout (the build's commit, read before any step runs); files of another project
 * come from that project's mirror at the pinned ref (a commit or a tag). Any project of this
 * server may include files of any other: the server holds both, and every token of the server
 * may read every project (roles are server-wide). A project that is not on the server cannot
 * be included: the server never clones a URL a pipeline names.
 */
import type { Kysely } from 'kysely';
import type { IncludeRead, IncludeRef, IncludeResolver } from '../../pipeline/include.js';
import { getProjectBySlug, type Database, type Project } from '../../store/index.js';
import { CheckoutError } from './git-checkout.js';
import { mirrorPath, readMirrorFile } from './git-mirror.js';
import { readRepoFile } from '../../executors/repo-files.js';

export interface ServerIncludeDeps {
  db: Kysely<Database>;
  /** The directory of the per-project mirrors; without it other projects cannot be included. */
  mirrors: string | undefined;
  /** The build's checkout: this repository's files. */
  checkoutDir: string;
  /** The URL git fetches a project from (its sealed credentials put back). */
  repoUrlFor?: (project: Project) => Promise<string>;
  signal?: AbortSignal;
}

/** The server's include resolver for one build. */
export function serverIncludes(deps: ServerIncludeDeps): IncludeResolver {
  return {
    async readInclude(ref: IncludeRef, maxBytes: number): Promise<IncludeRead> {
      if (ref.project === undefined) return readRepoFile(deps.checkoutDir, ref.file, maxBytes);
      const project = await getProjectBySlug(deps.db, ref.project);
      if (project === undefined)
        return {
          ok: false,
          message: `no project ${ref.project} on this server; files of projects of this server can be included`,
        };
      if (deps.mirrors === undefined)
        return {
          ok: false,
          message: "files of other projects are read from the server's repository mirrors, and it has none",
        };
      try {
        const found = await readMirrorFile({
          repoUrl: (await deps.repoUrlFor?.(project)) ?? project.repoUrl,
          mirror: mirrorPath(deps.mirrors, project),
          ref: ref.ref ?? '',
          file: ref.file,
          maxBytes,
          ...(deps.signal && { signal: deps.signal }),
        });
        if ('text' in found) return { ok: true, text: found.text };
        if ('tooBig' in found) return { ok: false, tooBig: found.tooBig };
        return { ok: false, message: `${found.missing} in ${ref.project} at ${ref.ref ?? ''}` };
      } catch (error) {
        const why =
          error instanceof CheckoutError
            ? error.message
            : error instanceof Error
              ? error.message
              : String(error);
        return { ok: false, message: `${ref.project} at ${ref.ref ?? ''}: ${why}` };
      }
    },
  };
}
