import { chmod, mkdir, stat } from 'node:fs/promises';

/**
 * Makes a directory of the server's data (the data dir, its logs and blobs) private: created
 * 0700, and tightened to 0700 when it exists readable or passable by group or others (as a
 * `.slipway-data` made by an older version, or by hand, is). Returns the warning to print
 * when it tightened one, naming the mode it had; undefined when nothing was wrong.
 *
 * Private because builds run on the same host: whatever another user can read here (the
 * database, the secret key, logs of every build) a build could read too.
 */
export async function makePrivateDir(path: string, what = 'data dir'): Promise<string | undefined> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  await chmod(path, mode & 0o700);
  return (
    `warning: the ${what} ${path} was readable by others (mode ${octal(mode)}); ` +
    `made it ${octal(mode & 0o700)} so that builds and other users cannot reach the server's data`
  );
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
