import type { Kysely } from 'kysely';
import type { Database, Project } from '../../store/index.js';
import {
  deleteSecret,
  getSealedSecret,
  projectRepoUrls,
  putSealedSecret,
  setProjectRepoUrl,
} from '../../store/secrets.js';
import { sealContext } from './store.js';

/**
 * Credentials in a project's repository URL (`https://user:token@host/…`) are secrets: they
 * are sealed into the project's secrets under {@link REPO_CREDENTIALS} (a name no user secret
 * can take, so no pipeline can ask for it with `from_secret`), and the stored URL keeps
 * `***` in their place. So every reader of `project.repoUrl` (API for every role,
 * notifications, build logs, webhook matching) sees `https://***@host/…`; only the server,
 * when it runs git, puts them back ({@link gitRepoUrl}). Admins replace them by giving a new
 * URL with credentials, keep them by sending the redacted URL back, drop them with a URL
 * without; nobody reads them back.
 */
export const REPO_CREDENTIALS = '.repo-credentials';

/** What stands in for credentials wherever a URL leaves the server. */
export const REDACTED = '***';

/** Seals and opens a value under a context: `SecretCipher` fits. */
export interface CredentialCipher {
  seal(plain: string, context: string): string;
  open(sealed: string, context: string): string;
}

/** scheme://, then the userinfo up to the authority's last `@` (an authority has no `/`, `?`, `#`). */
const USERINFO = /^(https?:\/\/)([^/?#]*)@/i;
const ANY_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/**
 * The userinfo of an http(s) URL, and the URL with {@link REDACTED} in its place. Other
 * schemes are left alone: an ssh user name (`ssh://git@host`) is not a credential.
 */
export function splitRepoCredentials(url: string): { url: string; credentials: string | undefined } {
  const match = USERINFO.exec(url.trim());
  if (!match) return { url, credentials: undefined };
  return {
    url: `${match[1]}${REDACTED}@${url.trim().slice(match[0].length)}`,
    credentials: match[2]!,
  };
}

/** Any URL's userinfo replaced by {@link REDACTED}: what may be shown of a URL anywhere. */
export function redactRepoUrl(url: string): string {
  return url.replace(ANY_USERINFO, `$1${REDACTED}@`);
}

/**
 * A notification target's URL as it may be shown: scheme, host and `/***` (Slack and
 * Mattermost webhook URLs are bearer credentials in their path).
 */
export function redactTargetUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/${REDACTED}`;
  } catch {
    return REDACTED;
  }
}

/**
 * The repository URL to store for a project that is given `given`: credentials in it are
 * sealed (replacing those stored), `***` keeps those stored, none drops them. Without a
 * cipher (library use without a key) the URL is stored as given.
 */
export async function storeRepoUrl(
  db: Kysely<Database>,
  cipher: CredentialCipher | undefined,
  projectId: number,
  given: string,
): Promise<string> {
  if (cipher === undefined) return given;
  const { url, credentials } = splitRepoCredentials(given);
  if (credentials === REDACTED) {
    const kept = await sealed(db, projectId);
    return kept === undefined ? given.replace(`${REDACTED}@`, '') : url;
  }
  if (credentials === undefined) {
    await deleteSecret(db, projectId, REPO_CREDENTIALS);
    return given;
  }
  const value = cipher.seal(credentials, sealContext(projectId, REPO_CREDENTIALS));
  await putSealedSecret(db, projectId, { name: REPO_CREDENTIALS, valueSealed: value, allowForks: false });
  return url;
}

/** The URL git is given for a project: its sealed credentials back in place of `***`. */
export async function gitRepoUrl(
  db: Kysely<Database>,
  cipher: CredentialCipher | undefined,
  project: Pick<Project, 'id' | 'repoUrl'>,
): Promise<string> {
  const { url, credentials } = splitRepoCredentials(project.repoUrl);
  if (cipher === undefined || credentials !== REDACTED) return project.repoUrl;
  const value = await sealed(db, project.id);
  if (value === undefined) return project.repoUrl;
  const plain = cipher.open(value, sealContext(project.id, REPO_CREDENTIALS));
  return url.replace(`${REDACTED}@`, `${plain}@`);
}

/**
 * Seals the credentials of repository URLs stored before they were secrets (run at start-up,
 * once the key is loaded: a SQL migration cannot encrypt). Idempotent; returns how many
 * projects it changed.
 */
export async function sealStoredRepoCredentials(
  db: Kysely<Database>,
  cipher: CredentialCipher,
): Promise<number> {
  let changed = 0;
  for (const row of await projectRepoUrls(db)) {
    const { credentials } = splitRepoCredentials(row.repoUrl);
    if (credentials === undefined || credentials === REDACTED) continue;
    const url = await storeRepoUrl(db, cipher, row.id, row.repoUrl);
    await setProjectRepoUrl(db, row.id, url);
    changed++;
  }
  return changed;
}

function sealed(db: Kysely<Database>, projectId: number): Promise<string | undefined> {
  return getSealedSecret(db, projectId, REPO_CREDENTIALS);
}
