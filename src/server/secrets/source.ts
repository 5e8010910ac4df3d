import type { Kysely } from 'kysely';
import type { SecretSource } from '../../orchestrator/types.js';
import type { Build, Database, Project } from '../../store/index.js';
import type { SecretCipher } from './cipher.js';
import { headRepoFork } from '../../store/hooks.js';
import { SecretError } from './errors.js';
import { findSecretForProject, sealContext } from './store.js';

export interface SecretsForDeps {
  db: Kysely<Database>;
  cipher: SecretCipher;
  /**
   * Whether a pull-request build comes from a fork. Default: `builds.head_repo_fork` as the
   * webhooks record it, with unknown (null) counted as a fork: a pull request whose origin
   * nobody recorded gets no secrets it was not meant to get.
   */
  isFork?: (build: Build) => Promise<boolean>;
}

/**
 * The `secretsFor` hook of the scheduler (`BuildRunDeps.secretsFor`): each build's
 * `from_secret` names resolve to the project's secret, else the global one of that name.
 * A pull-request build from a fork gets `''` for every secret not marked `allowForks`, and
 * the build log says so (`note`). A value that does not open (another key, or altered) fails
 * the build with a message saying which secret.
 */
export function secretsFor(
  deps: SecretsForDeps,
): (project: Project, build: Build, note?: (text: string) => void) => SecretSource {
  const isFork = deps.isFork ?? ((build: Build) => forkFromStore(deps.db, build.id));
  return (project, build, note) => {
    let fork: Promise<boolean> | undefined;
    return {
      async get(name) {
        const secret = await findSecretForProject(deps.db, project.id, name);
        if (secret === undefined) return undefined;
        if (build.event === 'pull_request' && !secret.allowForks && (await (fork ??= isFork(build)))) {
          note?.(`secret ${name} withheld: pull request from a fork`);
          return '';
        }
        try {
          return deps.cipher.open(secret.valueSealed, sealContext(secret.scope, name));
        } catch (error) {
          const owner = secret.scope === null ? 'global secret' : `secret of ${project.slug}`;
          throw new SecretError(
            'tampered',
            `${owner} "${name}" cannot be decrypted: ${error instanceof Error ? error.message : String(error)}`,
            {
              cause: error,
            },
          );
        }
      },
    };
  };
}

async function forkFromStore(db: Kysely<Database>, buildId: number): Promise<boolean> {
  return (await headRepoFork(db, buildId)) !== false;
}
