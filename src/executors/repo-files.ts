/**
 * Included pipeline files read from a directory: the build's checkout on the server, the
 * working tree for `slipway run` and `slipway validate`. Never outside the directory: the
 * compiler has refused `..` and absolute paths already, and a symbolic link that leads out
 * (to `/etc/passwd`, to the server's data) is refused here, as is anything not a regular file
 * (a FIFO would block the read). A file over the size bound is refused from its size, unread.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { IncludeRead, IncludeRef, IncludeResolver } from '../pipeline/include.js';

/** The text of `file` (a normalised path from the root) under `root`, or why not. */
export async function readRepoFile(root: string, file: string, maxBytes: number): Promise<IncludeRead> {
  let top: string;
  let real: string;
  try {
    top = await realpath(root);
    real = await realpath(join(top, file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      return { ok: false, message: `no file ${file} in the repository` };
    if (code === 'ELOOP') return { ok: false, message: `${file} is a loop of symbolic links` };
    return { ok: false, message: `${file} cannot be read (${code ?? String(error)})` };
  }
  if (!real.startsWith(top + sep))
    return { ok: false, message: `${file} is a symbolic link that leads out of the repository` };
  // Through a link into `.git` (config, hooks): not a file of the repository.
  if (
    real
      .slice(top.length + 1)
      .split(sep)
      .includes('.git')
  )
    return { ok: false, message: `${file} leads into .git; include files of the repository` };
  // Before opening: opening a FIFO for reading waits for a writer.
  if (!(await stat(real).catch(() => undefined))?.isFile())
    return { ok: false, message: `${file} is not a file` };
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
  const handle = await open(real, flags).catch((error: NodeJS.ErrnoException) => error);
  if (!('read' in handle))
    return { ok: false, message: `${file} cannot be read (${handle.code ?? handle.message})` };
  try {
    // Of the opened file, so that a swap after realpath changes nothing.
    const info = await handle.stat();
    if (!info.isFile()) return { ok: false, message: `${file} is not a file` };
    if (info.size > maxBytes) return { ok: false, tooBig: info.size };
    const buffer = Buffer.alloc(info.size + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    // It grew since: refused all the same, never read beyond the bound.
    if (bytesRead > maxBytes) return { ok: false, tooBig: bytesRead };
    return { ok: true, text: buffer.toString('utf8', 0, bytesRead) };
  } finally {
    await handle.close();
  }
}

/** `slipway run` and `slipway validate`: files of this repository from `root`; no other project's. */
export function localIncludes(root: string): IncludeResolver {
  return {
    readInclude(ref: IncludeRef, maxBytes: number): Promise<IncludeRead> {
      if (ref.project !== undefined) {
        return Promise.resolve({
          ok: false,
          message: `files of another project (${ref.project}) are read by the server, from its copy of that project's repository; here only files of this repository can be included`,
        });
      }
      return readRepoFile(root, ref.file, maxBytes);
    },
  };
}

/**
 * Where the includes of the pipeline file `file` are read from: the top directory of the git
 * work tree it is in (include paths are from the repository's root), else `fallback`.
 */
export async function repositoryRoot(file: string, fallback: string): Promise<string> {
  const dir = dirname(resolve(file));
  const top = await new Promise<string | undefined>((resolve) => {
    execFile('git', ['rev-parse', '--show-toplevel'], { cwd: dir, timeout: 30_000 }, (error, stdout) =>
      resolve(error ? undefined : stdout.trim()),
    );
  });
  return top || fallback;
}
