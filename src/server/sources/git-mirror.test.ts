import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestRepo } from '../testing/git-repo.js';
import { CheckoutError } from './git-checkout.js';
import { checkoutFromMirror, mirrorPath, pruneMirrors } from './git-mirror.js';

let root: string;
let mirrors: string;
let nextProject = 1;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-mirror-'));
  mirrors = join(root, 'mirrors');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh project (so a fresh mirror) of `repoUrl`, and a checkout function for it. */
function projectOf(repoUrl: string, under = mirrors) {
  const project = { id: nextProject++, repoUrl };
  const mirror = mirrorPath(under, project);
  let n = 0;
  const run = async (ref: { ref?: string; kind?: 'branch' | 'tag'; commit?: string } = {}) => {
    const dir = join(root, `co-${project.id}-${++n}`);
    const log: string[] = [];
    const made = await checkoutFromMirror({
      repoUrl,
      ref: ref.ref ?? 'main',
      kind: ref.kind ?? 'branch',
      ...(ref.commit !== undefined && { commit: ref.commit }),
      dir,
      mirror,
      log: (line) => log.push(line),
    });
    return { ...made, dir, log };
  };
  return { project, mirror, run };
}

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();

/** The files under `dir` (its `objects` left out) that contain `text`. */
function filesContaining(text: string, dir: string): string[] {
  try {
    return execFileSync('grep', ['-rlF', '--exclude-dir=objects', '--', text, dir], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '');
  } catch (error) {
    if ((error as { status?: number }).status === 1) return []; // grep: nothing found
    throw error;
  }
}

describe('checkouts from a per-project mirror (real git)', () => {
  it('checks out the exact commit as a self-contained repository: HEAD, log, status, files, origin', async () => {
    const repo = await TestRepo.create({ 'file.txt': 'one\n' });
    const first = repo.git('rev-parse', 'HEAD');
    const second = await repo.commit({ 'file.txt': 'two\n', 'sub/deep.txt': 'deep\n' }, 'second\n\nbody');
    repo.git('tag', '-a', 'v1', '-m', 'release');
    const { run, mirror } = projectOf(repo.url);

    const tip = await run();
    expect(tip).toMatchObject({
      commit: second,
      info: { message: 'second\n\nbody', author: 'Test <test@example.com>' },
    });
    expect(await readFile(join(tip.dir, 'sub', 'deep.txt'), 'utf8')).toBe('deep\n');
    expect(git(tip.dir, 'rev-parse', 'HEAD')).toBe(second);
    expect(git(tip.dir, 'log', '--format=%H %s')).toBe(`${second} second`);
    expect(git(tip.dir, 'status', '--porcelain')).toBe('');
    expect(git(tip.dir, 'remote', 'get-url', 'origin')).toBe(repo.url);
    git(tip.dir, 'fsck', '--no-dangling');
    // Nothing in the checkout's .git points back into the mirror.
    expect(filesContaining(mirror, join(tip.dir, '.git'))).toEqual([]);
    expect(git(tip.dir, 'count-objects', '-v')).toMatch(/^packs: 1$/m);
    git(tip.dir, 'fsck', '--full', '--strict');

    const old = await run({ commit: first });
    expect(old.commit).toBe(first);
    expect(old.log.filter((l) => l.startsWith('fetching'))).toEqual([]); // the mirror had it
    expect(await readFile(join(old.dir, 'file.txt'), 'utf8')).toBe('one\n');
    expect(git(old.dir, 'rev-parse', 'HEAD')).toBe(first);

    const abbreviated = await run({ commit: first.slice(0, 7) });
    expect(abbreviated.commit).toBe(first);

    const tag = await run({ ref: 'v1', kind: 'tag' });
    expect(tag.commit).toBe(second);
  });

  it('concurrent builds of one repository each get their own commit, with one fetch between them', async () => {
    const repo = await TestRepo.create({ 'n.txt': '0\n' });
    const commits = [repo.git('rev-parse', 'HEAD')];
    for (let i = 1; i < 4; i++) commits.push(await repo.commit({ 'n.txt': `${i}\n` }));
    const { run } = projectOf(repo.url);
    const made = await Promise.all(commits.map((commit) => run({ commit })));
    for (const [i, m] of made.entries()) {
      expect(m.commit).toBe(commits[i]);
      expect(await readFile(join(m.dir, 'n.txt'), 'utf8')).toBe(`${i}\n`);
      expect(git(m.dir, 'rev-parse', 'HEAD')).toBe(commits[i]);
    }
    // The first fetched the branch; the others, waiting on the mirror's fetch, found theirs in it.
    expect(made.flatMap((m) => m.log).filter((l) => l.startsWith('fetching'))).toHaveLength(1);
  });

  it('a force-pushed branch builds its new commit; a build of the old commit still gets the old one', async () => {
    const repo = await TestRepo.create({ 'f.txt': 'base\n' });
    const old = await repo.commit({ 'f.txt': 'old\n' }, 'old');
    const { run } = projectOf(repo.url);
    expect((await run()).commit).toBe(old);

    repo.git('reset', '--quiet', '--hard', 'HEAD~1');
    const rewritten = await repo.commit({ 'f.txt': 'new\n' }, 'rewritten');
    const now = await run();
    expect(now.commit).toBe(rewritten);
    expect(await readFile(join(now.dir, 'f.txt'), 'utf8')).toBe('new\n');
    const before = await run({ commit: old });
    expect(before.commit).toBe(old);
    expect(await readFile(join(before.dir, 'f.txt'), 'utf8')).toBe('old\n');

    // A mirror that never saw it fetches it by its SHA while the repository still has it.
    const fresh = projectOf(repo.url);
    expect((await fresh.run({ commit: old })).commit).toBe(old);
  });

  it('a mirror left half made, with a fetch killed half way, or with lost objects is made again', async () => {
    const repo = await TestRepo.create({ 'f.txt': 'one\n' });
    // Half made: a directory without the mark of a finished mirror.
    const half = projectOf(repo.url);
    await mkdir(join(half.mirror, 'objects'), { recursive: true });
    await writeFile(join(half.mirror, 'HEAD'), 'garbage');
    expect((await half.run()).commit).toBe(repo.git('rev-parse', 'HEAD'));

    // A fetch killed half way: its ref lock stays, and the next fetch cannot take it.
    const killed = projectOf(repo.url);
    await killed.run();
    await writeFile(join(killed.mirror, 'refs', 'heads', 'main.lock'), '');
    await writeFile(join(killed.mirror, 'objects', 'pack', 'tmp_pack_x1y2z3'), 'partial');
    const next = await repo.commit({ 'f.txt': 'two\n' });
    const after = await killed.run({ commit: next });
    expect(after.commit).toBe(next);
    expect(after.log.some((l) => l.includes('making it again'))).toBe(true);

    // Objects lost: the mirror names the commit but cannot produce its files.
    const lost = projectOf(repo.url);
    await lost.run();
    const packs = join(lost.mirror, 'objects', 'pack');
    for (const name of await readdir(packs)) await rm(join(packs, name), { force: true });
    const again = await lost.run({ commit: next });
    expect(again.commit).toBe(next);
    expect(await readFile(join(again.dir, 'f.txt'), 'utf8')).toBe('two\n');
  });

  it("says which branch, tag, commit or repository is missing, in checkout's words", async () => {
    const repo = await TestRepo.create({ 'f.txt': 'one\n' });
    const { run } = projectOf(repo.url);
    await expect(run({ ref: 'nope' })).rejects.toThrow(
      new CheckoutError(`branch "nope" not found in ${repo.url}`),
    );
    await expect(run({ ref: 'v9', kind: 'tag' })).rejects.toThrow(`tag "v9" not found in ${repo.url}`);
    for (const commit of ['abc1234', 'deadbeef'.repeat(5)])
      await expect(run({ commit })).rejects.toThrow(
        `commit ${commit} not found on branch main of ${repo.url}`,
      );
    await expect(run({ commit: '--upload-pack=x' })).rejects.toThrow('invalid commit "--upload-pack=x"');
    const missing = join(root, 'no-such-repo');
    await expect(projectOf(missing).run()).rejects.toThrow(
      `repository ${missing} not found or not readable: '${missing}' does not appear to be a git repository`,
    );
  });

  it('Basic credentials reach the repository, never the mirror, the checkout or the log', async () => {
    const repos = join(root, 'http');
    const work = await TestRepo.create({ 'f.txt': 'private\n' });
    execFileSync('git', ['clone', '--quiet', '--bare', work.dir, join(repos, 'p.git')]);
    const token = 'tok3n-NeverStored-42';
    const server = gitHttp(repos, `Basic ${Buffer.from(`bob:${token}`).toString('base64')}`);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://bob:${token}@127.0.0.1:${(server.address() as AddressInfo).port}/p.git`;
      const { run, mirror } = projectOf(url);
      const made = await run();
      expect(made.commit).toBe(work.git('rev-parse', 'HEAD'));
      expect(made.log.join('\n')).not.toContain(token);
      expect(git(made.dir, 'remote', 'get-url', 'origin')).not.toContain(token);
      for (const dir of [mirror, made.dir]) expect(filesContaining(token, dir)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('prune removes mirrors of deleted projects and leftovers, and keeps the current ones', async () => {
    const repo = await TestRepo.create({ 'f.txt': 'one\n' });
    const own = join(root, 'prune');
    const kept = projectOf(repo.url, own);
    const gone = projectOf(repo.url, own);
    await Promise.all([kept.run(), gone.run()]);
    await mkdir(`${kept.mirror}.tmp-0a1b2c`);
    const removed = await pruneMirrors(own, [kept.project]);
    expect(removed.sort()).toEqual(
      [gone.mirror, `${kept.mirror}.tmp-0a1b2c`].map((p) => p.slice(own.length + 1)).sort(),
    );
    expect(await readdir(own)).toEqual([kept.mirror.slice(own.length + 1)]);
    // A project pointed at another URL gets another mirror; the old one is garbage.
    expect(mirrorPath(own, { ...kept.project, repoUrl: `${repo.url}/` })).not.toBe(kept.mirror);
    expect((await kept.run()).commit).toBe(repo.git('rev-parse', 'HEAD'));
  });
});

/** `git http-backend` for requests with `wanted` as their Authorization, 401 for the rest. */
function gitHttp(projectRoot: string, wanted: string): Server {
  return createServer((req, res) => {
    if (req.headers.authorization !== wanted) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of out.subarray(0, split).toString('latin1').split('\r\n')) {
        const at = line.indexOf(':');
        const name = line.slice(0, at).trim().toLowerCase();
        if (name === 'status') status = Number.parseInt(line.slice(at + 1), 10);
        else if (name !== '') headers[name] = line.slice(at + 1).trim();
      }
      res.writeHead(status, headers).end(out.subarray(split + 4));
    });
  });
}
