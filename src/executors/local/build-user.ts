/**
 * The build user: the unprivileged account the server's local executor runs steps and
 * services as, so that a build cannot read or change what the server can (its data dir, key,
 * database, environment). A build can do what this user can do on the host: read
 * world-readable files, use the network, see the process list.
 */
import { execFile } from 'node:child_process';
import { lstat, chmod, mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import { ExecutorError } from '../types.js';

const run = promisify(execFile);

/** The account steps run as, resolved to ids. */
export interface BuildUser {
  name: string;
  uid: number;
  gid: number;
}

/** `--build-user self`: steps run as the server's own user. Builds can then read and change the server's data. */
export const SELF = 'self';

/** The default `--build-user`. */
export const DEFAULT_BUILD_USER = 'slipway-build';

/** What {@link resolveBuildUser} did, for the server's start-up message. */
export type BuildUserResolution =
  { kind: 'user'; user: BuildUser; created: boolean } | { kind: 'self'; name: string; uid: number };

/**
 * Finds the build user `name` (a user name or a numeric uid), creating it as a system account
 * without home or login shell when this process is root and it does not exist. `self` keeps
 * the server's user. Throws an ExecutorError('workspace') with what to do when the server
 * cannot run builds as another user (not root), or when the user would be root.
 */
export async function resolveBuildUser(name: string): Promise<BuildUserResolution> {
  const me = userInfo();
  if (name === SELF) return { kind: 'self', name: me.username, uid: me.uid };
  if (me.uid !== 0) {
    throw new ExecutorError(
      'workspace',
      `the local executor runs builds as the user "${name}", but the server runs as ${me.username} ` +
        '(not root) and cannot switch users. Start the server as root, or pass --build-user self to ' +
        `run builds as ${me.username}: builds can then read and change the server's data.`,
    );
  }
  let found = await lookupUser(name);
  let created = false;
  if (found === undefined) {
    if (/^\d+$/.test(name)) {
      throw new ExecutorError('workspace', `--build-user ${name}: no user has uid ${name}`);
    }
    await createSystemUser(name);
    found = await lookupUser(name);
    created = true;
    if (found === undefined)
      throw new ExecutorError('workspace', `created the build user "${name}", but cannot find it`);
  }
  if (found.uid === 0 || found.gid === 0) {
    throw new ExecutorError(
      'workspace',
      `--build-user ${name} is root (uid ${found.uid}, gid ${found.gid}): builds would own the host. ` +
        'Name an unprivileged user, or pass --build-user self on purpose.',
    );
  }
  return { kind: 'user', user: found, created };
}

/** The user `name` (or uid) from the system's user database, or undefined if there is none. */
export async function lookupUser(name: string): Promise<BuildUser | undefined> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name)) {
    throw new ExecutorError('workspace', `--build-user "${name}" is not a valid user name`);
  }
  let out: string;
  try {
    ({ stdout: out } = await run('getent', ['passwd', name], { timeout: 30_000 }));
  } catch (error) {
    // getent exits 2 for "no such entry"; anything else is a real failure.
    if ((error as { code?: unknown }).code === 2) return undefined;
    throw new ExecutorError('workspace', `cannot look up the build user "${name}": ${messageOf(error)}`, {
      cause: error,
    });
  }
  const [user, , uid, gid] = out.trim().split('\n')[0]!.split(':');
  if (user === undefined || uid === undefined || gid === undefined) return undefined;
  return { name: user, uid: Number(uid), gid: Number(gid) };
}

async function createSystemUser(name: string): Promise<void> {
  const args = [
    '--system',
    '--user-group',
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    '--comment',
    'Slipway builds',
    name,
  ];
  // Two servers starting at once (replicas) may both try: the loser finds the winner's user.
  for (let attempt = 1; ; attempt++) {
    try {
      await run('useradd', args, { timeout: 60_000 });
      return;
    } catch (error) {
      if ((await lookupUser(name)) !== undefined) return;
      // 10: /etc/passwd locked by another useradd; try again shortly.
      if ((error as { code?: unknown }).code === 10 && attempt < 5) {
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        continue;
      }
      throw new ExecutorError(
        'workspace',
        `cannot create the build user "${name}" (useradd ${args.join(' ')}): ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
}

/**
 * Makes `path` a directory owned by this process's user with exactly `mode`, refusing one
 * that is a symlink or belongs to someone else: under a shared directory such as /var/tmp,
 * anyone could have made it first and would then control what builds see. Returns the mode
 * it had when it was looser, for a warning.
 */
export async function ensureOwnDirectory(path: string, mode: number): Promise<number | undefined> {
  await mkdir(path, { recursive: true, mode });
  const info = await lstat(path);
  const uid = process.getuid?.() ?? info.uid;
  if (!info.isDirectory() || info.uid !== uid) {
    throw new ExecutorError(
      'workspace',
      `${path} is ${info.isSymbolicLink() ? 'a symbolic link' : info.isDirectory() ? `owned by uid ${info.uid}` : 'not a directory'}, ` +
        "not a directory of the server's user; remove it or choose another directory",
    );
  }
  const had = info.mode & 0o777;
  if (had === mode) return undefined;
  await chmod(path, mode);
  return (had & ~mode) !== 0 ? had : undefined;
}

function messageOf(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  if (typeof stderr === 'string' && stderr.trim() !== '') return stderr.trim();
  return error instanceof Error ? error.message : String(error);
}
