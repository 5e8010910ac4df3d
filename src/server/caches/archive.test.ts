import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveError, packCache, placeStaged, unpackToStage } from './archive.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cache-archive-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const LIMITS = { maxBytes: 1024 * 1024, maxEntries: 1000 };

/** A tar built entry by entry, so that it can say anything a hostile build could write. */
function tarOf(
  entries: { path: string; type?: string; linkpath?: string; body?: string; mode?: number }[],
): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path,
      type: (e.type ?? 'File') as 'File',
      mode: e.mode ?? 0o644,
      size: e.type === undefined || e.type === 'File' ? body.length : 0,
      mtime: new Date(0),
      ...(e.linkpath ? { linkpath: e.linkpath } : {}),
    });
    header.encode();
    blocks.push(header.block!);
    if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

let n = 0;
async function fresh(): Promise<{ stage: string; workspace: string; home: string; archive: string }> {
  const base = join(dir, `case-${++n}`);
  const paths = {
    stage: join(base, 'stage'),
    workspace: join(base, 'ws'),
    home: join(base, 'home'),
    archive: join(base, 'a.tgz'),
  };
  await Promise.all([
    mkdir(paths.stage, { recursive: true }),
    mkdir(paths.workspace, { recursive: true }),
    mkdir(paths.home, { recursive: true }),
  ]);
  return paths;
}

/**
 * The reason an archive is refused, by both extractors: GNU tar after the header check, and
 * node-tar (the fallback where there is no GNU tar) checking as it writes. They must agree.
 */
async function expectRefused(reason: RegExp, archive: Buffer, limits = LIMITS): Promise<void> {
  for (const extractor of ['auto', 'node-tar'] as const) {
    const { stage, archive: file, workspace } = await fresh();
    await writeFile(file, archive);
    const error = await unpackToStage(file, stage, limits, undefined, extractor).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, extractor).toBeInstanceOf(ArchiveError);
    // Nothing reached the workspace or the stage's parent.
    expect(await lstat(join(workspace, 'evil')).catch(() => undefined)).toBeUndefined();
    expect(await lstat(join(stage, '..', 'evil')).catch(() => undefined)).toBeUndefined();
    expect((error as Error).message, extractor).toMatch(reason);
  }
}

describe('cache archives', () => {
  it('packs workspace and HOME paths and restores them elsewhere, links kept as links', async () => {
    const a = await fresh();
    await mkdir(join(a.workspace, 'node_modules/pkg'), { recursive: true });
    await writeFile(join(a.workspace, 'node_modules/pkg/index.js'), 'module.exports = 1\n');
    await symlink('pkg/index.js', join(a.workspace, 'node_modules/main.js'));
    await mkdir(join(a.home, '.npm'));
    await writeFile(join(a.home, '.npm/blob'), 'x'.repeat(5000));
    const packed = await packCache(a, ['node_modules', '~/.npm', 'missing'], a.archive, dir);
    expect(packed).toEqual(['w/node_modules', 'h/.npm']);

    const b = await fresh();
    await mkdir(join(b.workspace, 'node_modules'));
    await writeFile(join(b.workspace, 'node_modules/own.txt'), 'kept');
    const { bytes } = await unpackToStage(a.archive, b.stage, LIMITS);
    expect(bytes).toBe(5000 + 19);
    expect(await placeStaged(b.stage, b)).toEqual(['node_modules', '~/.npm']);
    expect(await readFile(join(b.workspace, 'node_modules/pkg/index.js'), 'utf8')).toBe(
      'module.exports = 1\n',
    );
    expect(await readlink(join(b.workspace, 'node_modules/main.js'))).toBe('pkg/index.js');
    expect(await readFile(join(b.workspace, 'node_modules/own.txt'), 'utf8')).toBe('kept');
    expect((await stat(join(b.home, '.npm/blob'))).size).toBe(5000);
  });

  it('refuses `..` entries, absolute paths, links out of the root, devices and entries outside w/ and h/', async () => {
    await expectRefused(/"\.\."/, gzipSync(tarOf([{ path: 'w/../../evil', body: 'x' }])));
    await expectRefused(/absolute/, gzipSync(tarOf([{ path: '/tmp/evil', body: 'x' }])));
    await expectRefused(
      /absolute/,
      gzipSync(tarOf([{ path: 'w/evil', type: 'SymbolicLink', linkpath: '/etc/passwd' }])),
    );
    await expectRefused(
      /outside its root/,
      gzipSync(tarOf([{ path: 'w/a/evil', type: 'SymbolicLink', linkpath: '../../h/x' }])),
    );
    await expectRefused(
      /hard link/,
      gzipSync(tarOf([{ path: 'w/evil', type: 'Link', linkpath: 'h/.npm/x' }])),
    );
    await expectRefused(/CharacterDevice/, gzipSync(tarOf([{ path: 'w/evil', type: 'CharacterDevice' }])));
    await expectRefused(/outside the workspace/, gzipSync(tarOf([{ path: 'evil', body: 'x' }])));
  });

  it('refuses corrupt, truncated and oversized archives', async () => {
    await expectRefused(/corrupt|header/, Buffer.from('not a gzip at all'));
    const good = gzipSync(tarOf([{ path: 'w/f', body: 'y'.repeat(4096) }]));
    await expectRefused(/truncated|end/, good.subarray(0, good.length - 20));
    await expectRefused(/./, gzipSync(Buffer.alloc(2048, 7)));
    const big = gzipSync(
      tarOf([
        { path: 'w/a', body: 'z'.repeat(3000) },
        { path: 'w/b', body: 'z'.repeat(3000) },
      ]),
    );
    await expectRefused(/more than 3\.9 KiB/, big, { maxBytes: 4000, maxEntries: 100 });
    const many = gzipSync(tarOf(Array.from({ length: 20 }, (_, i) => ({ path: `w/f${i}`, body: 'a' }))));
    await expectRefused(/more than 10 entries/, many, { maxBytes: 1e6, maxEntries: 10 });
  });

  it('does not pack what a restore would refuse: a sparse file of 1 GiB (a few blocks on disk), too many entries', async () => {
    const a = await fresh();
    await mkdir(join(a.workspace, 'deps'));
    await writeFile(join(a.workspace, 'deps/big'), '');
    await truncate(join(a.workspace, 'deps/big'), 1024 ** 3);
    await expect(packCache(a, ['deps'], a.archive, dir, undefined, LIMITS)).rejects.toThrow(
      /expands to more than 1(\.0)? MiB/,
    );
    await expect(lstat(a.archive)).rejects.toThrow(/ENOENT/);

    const b = await fresh();
    await mkdir(join(b.workspace, 'deps'));
    await Promise.all(Array.from({ length: 12 }, (_, i) => writeFile(join(b.workspace, `deps/f${i}`), 'x')));
    await expect(
      packCache(b, ['deps'], b.archive, dir, undefined, { maxBytes: 1e6, maxEntries: 10 }),
    ).rejects.toThrow(/more than 10 entries/);
    // Within the limits the same tree packs.
    expect(
      await packCache(b, ['deps'], b.archive, dir, undefined, { maxBytes: 1e6, maxEntries: 13 }),
    ).toEqual(['w/deps']);
  });

  it('strips setuid bits and never restores through a symlink the workspace holds', async () => {
    const c = await fresh();
    await writeFile(c.archive, gzipSync(tarOf([{ path: 'w/out/tool', body: '#!/bin/sh\n', mode: 0o4755 }])));
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await symlink(outside, join(c.workspace, 'out'));
    await unpackToStage(c.archive, c.stage, LIMITS);
    expect((await stat(join(c.stage, 'w/out/tool'))).mode & 0o7777).toBe(0o755);
    await expect(placeStaged(c.stage, c)).rejects.toThrow(/symlink/);
    expect(await lstat(join(outside, 'tool')).catch(() => undefined)).toBeUndefined();
  });
});
