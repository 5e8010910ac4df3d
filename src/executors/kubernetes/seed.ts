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
  return new Promise<Buffer>((resolve, reject) => {
    const tar = spawn('tar', ['-C', sourceDir, '--null', '--no-recursion', '-T', '-', '-czf', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let tooLarge = false;
    tar.stdin.on('error', () => undefined);
    tar.stdin.end(tarFileList(entries));
    tar.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        tar.kill('SIGKILL');
        return;
      }
      chunks.push(chunk);
    });
    tar.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    tar.on('error', (error) =>
      reject(new ExecutorError('workspace', `cannot pack ${sourceDir}: ${error.message}`, { cause: error })),
    );
    tar.on('close', (code) => {
      if (tooLarge) {
        reject(
          new ExecutorError(
            'workspace',
            `the checkout of ${sourceDir} is over ${Math.round(maxBytes / 1024 / 1024)} MiB compressed: too large to copy ` +
              'into a build pod through the Kubernetes API: clone it in a step instead',
          ),
        );
      } else if (code !== 0) {
        reject(
          new ExecutorError('workspace', `cannot pack ${sourceDir}: tar exited ${code}: ${stderr.trim()}`),
        );
      } else {
        resolve(Buffer.concat(chunks));
      }
    });
  });
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
