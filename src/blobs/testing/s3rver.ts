import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../s3-blob-store.js';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** A client for the server, configured as `createBlobStore` would for this endpoint. */
  client(): S3Client;
  close(): Promise<void>;
}

/** Credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * Runs s3rver in its own Node process. Its list continuation tokens use DES, which OpenSSL 3
 * has only in the legacy provider: without `--openssl-legacy-provider` every listing longer
 * than one page fails with an internal error.
 */
const SERVER_SCRIPT = `
const S3rver = require(process.argv[1]);
const server = new S3rver(JSON.parse(process.argv[2]));
server.run().then((info) => process.stdout.write(JSON.stringify(info) + '\\n'), (error) => {
  process.stderr.write(String(error && error.stack || error) + '\\n');
  process.exit(1);
});
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
`;

/** A real s3rver on a free loopback port, with one empty bucket, its data in a temp dir. */
export async function startTestS3(bucket = 'slipway-test'): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'slipway-s3rver-'));
  const options = {
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  };
  const modulePath = createRequire(import.meta.url).resolve('s3rver');
  // stdin stays open as a lifeline: if the test process dies, the server sees EOF and exits.
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '-e', SERVER_SCRIPT, modulePath, JSON.stringify(options)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      lines.close();
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code}: ${stderr}`)));
    child.once('error', reject);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    bucket,
    client: () => {
      const client = new S3Client(
        s3ClientConfig({ endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS }, {}),
      );
      clients.push(client);
      return client;
    },
    close: async () => {
      for (const client of clients) client.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
