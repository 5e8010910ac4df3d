import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import type { Artifact as ArtifactDto } from '../../contract/index.js';
import { EXIT, UsageError } from '../errors.js';
import { ApiClientError } from './api-client.js';
import { apiAction, client, plainTable, remote, type CommandIo } from './command-kit.js';
import { parseBuildNumber, parseSlug } from './commands.js';

interface Flags {
  server?: string;
  token?: string;
  output?: string;
}

export interface ArtifactCommandIo extends CommandIo {
  cwd: () => string;
}

/**
 * `slipway artifacts list <owner/name> <number>` and `slipway artifacts get <owner/name>
 * <number> <path> [-o file|-]`. A download goes to a temp file next to the target and is
 * renamed into place only after its size and SHA-256 match what the server recorded, so a
 * cut connection never leaves half a file under the real name.
 */
export function registerArtifactCommands(
  program: Command,
  exit: (code: number) => void,
  io: ArtifactCommandIo = { stdout: process.stdout, stderr: process.stderr, cwd: () => process.cwd() },
): void {
  const action = apiAction(exit, io.stderr);

  const artifacts = program.command('artifacts').description("list and download a build's artifacts");

  remote(
    artifacts
      .command('list')
      .alias('ls')
      .description("list a build's artifacts")
      .argument('<owner/name>')
      .argument('<number>', 'build number')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
      ),
  ).action(
    action(async (slugArg: string, numberArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const api = client(flags);
      const build = await api.getProjectBuild(slug, parseBuildNumber(numberArg));
      const list = await api.listArtifacts(build.id);
      if (flags.output === 'json') io.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.length === 0) io.stderr.write(`build ${slug} #${build.number} has no artifacts\n`);
      else io.stdout.write(artifactsTable(list));
      return EXIT.ok;
    }),
  );

  remote(
    artifacts
      .command('get')
      .description('download one artifact (default: to its file name in the current directory)')
      .argument('<owner/name>')
      .argument('<number>', 'build number')
      .argument('<path>', 'artifact path as listed')
      .option('-o, --output <file>', 'write to this file, or "-" for stdout'),
  ).action(
    action(async (slugArg: string, numberArg: string, path: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const api = client(flags);
      const build = await api.getProjectBuild(slug, parseBuildNumber(numberArg));
      const download = await api.downloadArtifact(build.id, path);
      const check = new Verify(path, download.size, download.sha256);
      const body = Readable.fromWeb(download.body);
      if (flags.output === '-') {
        await pipeline(body, check, io.stdout, { end: false });
        check.verify();
        return EXIT.ok;
      }
      const target = resolve(io.cwd(), flags.output ?? basename(path));
      const temp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.partial`);
      try {
        await pipeline(body, check, createWriteStream(temp, { flags: 'wx' }));
        check.verify();
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        if (error instanceof UsageError || error instanceof ApiClientError) throw error;
        io.stderr.write(
          `slipway: downloading ${path} failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        return EXIT.buildFailed;
      }
      io.stderr.write(`${path} → ${target} (${check.bytes} bytes, sha256 ${check.sha256.slice(0, 12)}…)\n`);
      return EXIT.ok;
    }),
  );
}

/** Counts and hashes what passes; `verify` compares with what the server announced. */
class Verify extends Transform {
  bytes = 0;
  sha256 = '';
  private readonly hash = createHash('sha256');

  constructor(
    private readonly path: string,
    private readonly size: number | undefined,
    private readonly expected: string | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.sha256 = this.hash.digest('hex');
    callback();
  }

  verify(): void {
    if (this.size !== undefined && this.bytes !== this.size) {
      throw new Error(`${this.path}: got ${this.bytes} bytes, the server announced ${this.size}`);
    }
    if (this.expected !== undefined && this.sha256 !== this.expected) {
      throw new Error(`${this.path}: the SHA-256 of the download does not match the artifact's`);
    }
  }
}

function artifactsTable(list: ArtifactDto[]): string {
  const rows = [
    ['PATH', 'SIZE', 'SHA256', 'STEP'],
    ...list.map((a) => [a.path, String(a.size), a.sha256.slice(0, 12), a.step]),
  ];
  return plainTable(rows);
}
