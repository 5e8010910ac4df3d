import { spawn } from 'node:child_process';
import { listSeed, tarFileList, WHOLE_DIRECTORY, type SourceSeed } from '../workspace-seed.js';
import { ExecutorError } from '../types.js';

/**
 * The checkout as a gzip'd tar held in memory (it goes to the cluster as ConfigMaps, which
 * live in etcd: a seed is small or refused). The files are the ones `listSeed` chose, as on
 * every executor. Above `maxBytes` (compressed) tar is stopped and the build fails with a
 * clear reason instead of filling the API server.
 */
export async function packSeed(
  sourceDir: string,
  seed: SourceSeed | undefined,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  let entries;
  try {
    entries = (await listSeed(sourceDir, seed ?? WHOLE_DIRECTORY, signal)).entries;
  } catch (error) {
    throw new ExecutorError('workspace', `cannot copy ${sourceDir} into the workspace: ${text(error)}`, {
      cause: error,
    });
  }
  const packed = await tarBounded(
    ['-C', sourceDir, '--null', '--no-recursion', '-T', '-', '-czf', '-'],
    tarFileList(entries),
    maxBytes,
    signal,
  ).catch((error: unknown) => {
    throw new ExecutorError('workspace', `cannot pack ${sourceDir}: ${text(error)}`, { cause: error });
  });
  if (packed === undefined)
    throw new ExecutorError(
      'workspace',
      `the checkout of ${sourceDir} is over ${Math.round(maxBytes / 1024 / 1024)} MiB compressed: too large to copy ` +
        'into a build pod through the Kubernetes API: clone it in a step instead',
    );
  return packed;
}

/**
 * A step cache's restore (`w/`, `h/` under `dir`, checked and unpacked by the server) as a
 * gzip'd tar for the `seed` container, in memory like the seed; undefined once it passes
 * `maxBytes` (tar is stopped there). Owners are left out: the step's user is not known here.
 */
export function packCacheRestore(
  dir: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Buffer | undefined> {
  return tarBounded(
    ['-C', dir, '--owner=0', '--group=0', '--numeric-owner', '-czf', '-', '.'],
    '',
    maxBytes,
    signal,
  );
}

/** GNU tar's output, or undefined when it passes `maxBytes`; rejects when tar fails. */
function tarBounded(
  args: string[],
  stdin: string | Buffer,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Buffer | undefined> {
  return new Promise<Buffer | undefined>((resolve, reject) => {
    const tar = spawn('tar', args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let tooLarge = false;
    tar.stdin.on('error', () => undefined);
    tar.stdin.end(stdin);
    tar.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        tar.kill('SIGKILL');
        return;
      }
      if (!tooLarge) chunks.push(chunk);
    });
    tar.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    tar.on('error', reject);
    tar.on('close', (code) => {
      if (tooLarge) resolve(undefined);
      else if (code !== 0) reject(new Error(`tar exited ${code}: ${stderr.trim()}`));
      else resolve(Buffer.concat(chunks));
    });
  });
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
