import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MESSAGE_CHARS, parseCommitInfo, COMMIT_INFO_FORMAT } from './commit-info.js';
import { CommitReader } from './commit-reader.js';

let root: string;
let repo: string;
let reader: CommitReader;

const git = (args: string[], input?: string | Buffer) =>
  execFileSync('git', ['--git-dir', repo, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(input !== undefined && { input }),
  }).trim();

/** A raw commit object written as is: headers, a blank line, the message. */
const writeCommit = (raw: string | Buffer) => git(['hash-object', '-t', 'commit', '-w', '--stdin'], raw);

/** What `git log` says of a commit, as git-mirror.ts read it before the reader. */
const logInfo = (sha: string) =>
  parseCommitInfo(git(['log', '-1', '--no-show-signature', `--format=${COMMIT_INFO_FORMAT}`, sha]));

let tree: string;
const header = (more = '') =>
  `tree ${tree}\nauthor Ada Lovelace <ada@example.com> 1700000000 +0000\n` +
  `committer C <c@example.com> 1700000000 +0000\n${more}`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-commit-reader-'));
  repo = join(root, 'repo.git');
  execFileSync('git', ['init', '--quiet', '--bare', repo]);
  tree = git(['mktree'], '');
  reader = new CommitReader(repo);
});

afterAll(async () => {
  reader?.close();
  await rm(root, { recursive: true, force: true });
});

describe('the commit reader: one git cat-file --batch per mirror (real git)', () => {
  it('reads the author and message git log gives, past a gpgsig header and in the commit encoding', async () => {
    const signed = writeCommit(
      header('gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n') +
        '\nSigned subject\n\nbody line\n',
    );
    expect(await reader.lookup(signed)).toEqual({
      commit: signed,
      info: { message: 'Signed subject\n\nbody line', author: 'Ada Lovelace <ada@example.com>' },
    });
    expect((await reader.lookup(signed))?.info).toEqual(logInfo(signed));

    const latin1 = writeCommit(
      Buffer.from(
        `tree ${tree}\nauthor Jos\xe9 <j@example.com> 1700000000 +0000\n` +
          `committer C <c@example.com> 1700000000 +0000\nencoding ISO-8859-1\n\nCaf\xe9\n`,
        'latin1',
      ),
    );
    expect((await reader.lookup(latin1))?.info).toEqual({ message: 'Café', author: 'José <j@example.com>' });
    expect((await reader.lookup(latin1))?.info).toEqual(logInfo(latin1));

    const bare = writeCommit(header());
    expect((await reader.lookup(bare))?.info).toEqual({
      message: '',
      author: 'Ada Lovelace <ada@example.com>',
    });
  });

  it('skips past a commit of 5 MB, cutting its message as git log was cut', async () => {
    const big = writeCommit(`${header()}\n${'0123456789abcdef\n'.repeat(5 * 65536)}`);
    const found = await reader.lookup(big);
    expect(found?.commit).toBe(big);
    expect(found?.info.message).toHaveLength(MAX_MESSAGE_CHARS);
    expect(found?.info).toEqual(logInfo(big));
    // The process reads on after it: the next answer is its own.
    const small = writeCommit(`${header()}\nafter the big one\n`);
    expect((await reader.lookup(small))?.info.message).toBe('after the big one');
  });

  it('answers undefined for a missing sha and for a tree or a blob; peels a tag to its commit', async () => {
    expect(await reader.lookup('0'.repeat(40))).toBeUndefined();
    const blob = git(['hash-object', '-w', '--stdin'], 'a blob\n');
    expect(await reader.lookup(blob)).toBeUndefined();
    expect(await reader.lookup(tree)).toBeUndefined();
    const commit = writeCommit(`${header()}\ntagged\n`);
    const tag = git(
      ['mktag'],
      `object ${commit}\ntype commit\ntag v1\ntagger T <t@example.com> 1700000000 +0000\n\nrelease\n`,
    );
    expect((await reader.lookup(tag))?.commit).toBe(commit);
    await expect(reader.lookup('HEAD')).rejects.toThrow(/not a full sha/);
  });

  it('answers concurrent lookups each with its own commit', async () => {
    const shas = Array.from({ length: 20 }, (_, i) => writeCommit(`${header()}\nnumber ${i}\n`));
    const asked = [...shas, '1'.repeat(40), ...shas];
    const answers = await Promise.all(asked.map((sha) => reader.lookup(sha)));
    expect(answers.map((a) => a?.info.message)).toEqual([
      ...shas.map((_, i) => `number ${i}`),
      undefined,
      ...shas.map((_, i) => `number ${i}`),
    ]);
  });

  it('fails the questions of a process killed under them, and starts a new one for the next', async () => {
    const sha = writeCommit(`${header()}\nstill here\n`);
    expect((await reader.lookup(sha))?.info.message).toBe('still here');
    const pid = reader.pid!;
    expect(pid).toBeDefined();
    // A question asked after the kill and before the process is seen gone fails; none hangs.
    process.kill(pid, 'SIGKILL');
    const during = await reader.lookup(sha).then(
      (found) => found?.info.message,
      (error: Error) => error.name,
    );
    expect(['still here', 'CommitReaderError']).toContain(during);
    expect((await reader.lookup(sha))?.info.message).toBe('still here');
    expect(reader.pid).not.toBe(pid);
  });

  it('closes its process when told, and starts again when asked', async () => {
    const sha = writeCommit(`${header()}\nagain\n`);
    await reader.lookup(sha);
    const pid = reader.pid!;
    reader.close();
    expect(reader.pid).toBeUndefined();
    expect((await reader.lookup(sha))?.info.message).toBe('again');
    expect(reader.pid).not.toBe(pid);
  });
});
