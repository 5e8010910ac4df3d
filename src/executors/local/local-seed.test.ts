import { existsSync, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WHOLE_DIRECTORY } from '../workspace-seed.js';
import { LocalExecutor } from './local-executor.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempIn(parent: string): Promise<string> {
  const dir = await mkdtemp(join(parent, 'slipway-local-seed-'));
  dirs.push(dir);
  return dir;
}

async function clone(parent: string): Promise<string> {
  const dir = await tempIn(parent);
  await mkdir(join(dir, '.git'));
  await writeFile(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(join(dir, 'app.txt'), 'from the clone\n');
  return dir;
}

const spec = (sourceDir: string) => ({
  buildId: `seed-${Math.random().toString(36).slice(2, 10)}`,
  project: 'acme/web',
  branch: 'main',
  services: [],
  sourceDir,
  sourceSeed: { ...WHOLE_DIRECTORY, movable: true },
});

describe('local executor: a movable source (the server clone)', () => {
  it('is moved into the workspace on the same file system, not copied', async () => {
    const tmpRoot = await tempIn(tmpdir());
    const source = await clone(tmpdir());
    const ex = new LocalExecutor({ tmpRoot });
    const handle = await ex.prepare(spec(source));
    try {
      expect(await readFile(join(handle.workspace, 'app.txt'), 'utf8')).toBe('from the clone\n');
      expect(await readFile(join(handle.workspace, '.git', 'HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
      expect(existsSync(source)).toBe(false);
    } finally {
      await ex.destroy(handle);
    }
  });

  // /dev/shm is a tmpfs on Linux: another file system than the temp dir, so rename fails (EXDEV).
  const otherFs =
    existsSync('/dev/shm') && statfsSync('/dev/shm').type !== statfsSync(tmpdir()).type
      ? '/dev/shm'
      : undefined;
  it('is copied, .git included, when it is on another file system', async () => {
    expect(otherFs, 'this test needs /dev/shm on another file system than the temp dir').toBeDefined();
    const tmpRoot = await tempIn(tmpdir());
    const source = await clone(otherFs!);
    const ex = new LocalExecutor({ tmpRoot });
    const handle = await ex.prepare(spec(source));
    try {
      expect(await readFile(join(handle.workspace, 'app.txt'), 'utf8')).toBe('from the clone\n');
      expect(await readFile(join(handle.workspace, '.git', 'HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
      expect(existsSync(join(source, 'app.txt'))).toBe(true);
    } finally {
      await ex.destroy(handle);
    }
  });
});
