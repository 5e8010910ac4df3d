import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckoutError, GIT_MAX_BUFFER, runGit } from './git-checkout.js';
import { gitSpawner } from './git-spawner.js';

let root: string;
/** A git:// server that accepts connections and never answers: a git that waits forever. */
let silent: Server;
let url: string;
const sockets: Socket[] = [];
let connected: Array<(socket: Socket) => void> = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-git-spawner-'));
  silent = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    // Read (and drop) what git says, so that its end is seen when it dies.
    socket.resume();
    for (const wake of connected.splice(0)) wake(socket);
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  url = `git://127.0.0.1:${(silent.address() as AddressInfo).port}/repo.git`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  silent?.close();
  await rm(root, { recursive: true, force: true });
});

/** The next connection to the silent server: git is running and waiting. */
const nextConnection = () => new Promise<Socket>((resolve) => connected.push(resolve));

/** Resolves when git's connection closed: the git process is gone. */
const closed = (socket: Socket) =>
  socket.closed ? Promise.resolve() : once(socket, 'close').then(() => undefined);

describe.each(['helper', 'direct'])('runGit (real git, %s)', (how) => {
  const before = process.env.SLIPWAY_GIT_HELPER;
  beforeAll(() => {
    if (how === 'direct') process.env.SLIPWAY_GIT_HELPER = '0';
  });
  afterEach(() => {
    connected = [];
  });
  afterAll(() => {
    if (before === undefined) delete process.env.SLIPWAY_GIT_HELPER;
    else process.env.SLIPWAY_GIT_HELPER = before;
  });

  it('answers with git output, passes input and environment, and reports a failing git in its words', async () => {
    expect(await runGit(['--version'], undefined)).toMatch(/^git version /);
    const repo = join(root, `repo-${how}`);
    execFileSync('git', ['init', '--quiet', '--bare', repo]);
    const sha = (
      await runGit(
        ['--git-dir', repo, 'hash-object', '-w', '--stdin'],
        undefined,
        undefined,
        undefined,
        {},
        'hi\n',
      )
    ).trim();
    expect(execFileSync('git', ['--git-dir', repo, 'cat-file', 'blob', sha], { encoding: 'utf8' })).toBe(
      'hi\n',
    );
    // The environment reaches git (here an index file of the caller's choice).
    const index = join(root, `index-${how}`);
    await runGit(
      ['--git-dir', repo, 'update-index', '--add', '--cacheinfo', `100644,${sha},a.txt`],
      undefined,
      undefined,
      undefined,
      {
        GIT_INDEX_FILE: index,
      },
    );
    expect(
      execFileSync('git', ['--git-dir', repo, 'ls-files'], {
        env: { ...process.env, GIT_INDEX_FILE: index },
        encoding: 'utf8',
      }),
    ).toBe('a.txt\n');

    const failed = await runGit(['--git-dir', join(root, 'nothing-here'), 'log'], undefined).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(CheckoutError);
    expect((failed as CheckoutError).message).toMatch(/^git --git-dir failed: not a git repository/);
  });

  it('kills a git that does not answer in time, and one whose output is over maxBuffer', async () => {
    const connection = nextConnection();
    const slow = runGit(['ls-remote', '--', url], undefined, undefined, 1_000).catch((e: unknown) => e);
    const socket = await connection;
    const error = await slow;
    expect(error).toBeInstanceOf(CheckoutError);
    expect((error as CheckoutError).gitLine).toBe('no answer within 1s');
    await closed(socket);

    const repo = join(root, `big-${how}`);
    execFileSync('git', ['init', '--quiet', '--bare', repo]);
    const file = join(root, `big-${how}.bin`);
    await writeFile(file, Buffer.alloc(GIT_MAX_BUFFER + 1024, 'x'));
    const sha = execFileSync('git', ['--git-dir', repo, 'hash-object', '-w', file], {
      encoding: 'utf8',
    }).trim();
    const big = await runGit(['--git-dir', repo, 'cat-file', 'blob', sha], undefined).catch(
      (e: unknown) => e,
    );
    expect(big).toBeInstanceOf(CheckoutError);
    expect((big as CheckoutError).gitLine).toMatch(/maxBuffer/);
  });

  it('kills git when the signal aborts, and rejects at once for a signal already aborted', async () => {
    const controller = new AbortController();
    const connection = nextConnection();
    const running = runGit(['ls-remote', '--', url], undefined, controller.signal).catch((e: unknown) => e);
    const socket = await connection;
    controller.abort();
    expect(await running).toBeInstanceOf(CheckoutError);
    await closed(socket);
    expect(await runGit(['--version'], undefined, controller.signal).catch((e: unknown) => e)).toBeInstanceOf(
      CheckoutError,
    );
  });
});

describe('the git helper process (real git)', () => {
  it('runs git from a helper, not from this process', async () => {
    await runGit(['--version'], undefined);
    const helper = gitSpawner()?.pid;
    expect(helper).toBeDefined();
    expect(helper).not.toBe(process.pid);
  });

  it('fails the requests of a helper killed under them, kills their git, and starts a new helper', async () => {
    const connection = nextConnection();
    const running = runGit(['ls-remote', '--', url], undefined).catch((e: unknown) => e);
    const socket = await connection;
    const pid = gitSpawner()!.pid!;
    process.kill(pid, 'SIGKILL');
    const error = await running;
    expect(error).toBeInstanceOf(CheckoutError);
    expect((error as CheckoutError).gitLine).toMatch(/helper process ended/);
    await closed(socket);
    expect(await runGit(['--version'], undefined)).toMatch(/^git version /);
    expect(gitSpawner()!.pid).not.toBe(pid);
  });
});
