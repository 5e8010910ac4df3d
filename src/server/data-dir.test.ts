import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase } from '../store/index.js';
import { makePrivateDir } from './data-dir.js';
import { loadSecretKey } from './secrets/index.js';

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe("the server's data dir, key and database are private", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'slipway-data-dir-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('a fresh data dir is 0700, its secret.key and slipway.db (-wal, -shm) 0600, even under umask 000', async () => {
    const dir = join(tmp, 'fresh', '.slipway-data');
    const umask = process.umask(0o000);
    try {
      expect(await makePrivateDir(dir)).toBeUndefined();
      const db = openDatabase(`sqlite:${join(dir, 'slipway.db')}`);
      try {
        await migrateToLatest(db);
        for (const file of ['slipway.db', 'slipway.db-wal', 'slipway.db-shm']) {
          expect(existsSync(join(dir, file)), file).toBe(true);
          expect((await modeOf(join(dir, file))).toString(8), file).toBe('600');
        }
      } finally {
        await db.destroy();
      }
      await loadSecretKey({ dataDir: dir, env: {} });
      expect((await modeOf(join(dir, 'secret.key'))).toString(8)).toBe('600');
    } finally {
      process.umask(umask);
    }
    expect((await modeOf(dir)).toString(8)).toBe('700');
  });

  it('tightens a data dir others could read to 0700, saying what it was', async () => {
    const dir = join(tmp, 'loose');
    await mkdir(dir);
    await chmod(dir, 0o755);
    expect(await makePrivateDir(dir)).toBe(
      `warning: the data dir ${dir} was readable by others (mode 0755); made it 0700 so that builds and ` +
        "other users cannot reach the server's data",
    );
    expect((await modeOf(dir)).toString(8)).toBe('700');
    // Once private, nothing more to say.
    expect(await makePrivateDir(dir)).toBeUndefined();
    await chmod(dir, 0o750);
    expect(await makePrivateDir(dir, 'log dir')).toMatch(
      /^warning: the log dir .* \(mode 0750\); made it 0700/,
    );
  });

  it('tightens a database and its WAL files left readable by an older version', async () => {
    const dir = join(tmp, 'old-db');
    await mkdir(dir, { mode: 0o700 });
    const path = join(dir, 'slipway.db');
    const first = openDatabase(`sqlite:${path}`);
    await migrateToLatest(first);
    const files = [path, `${path}-wal`, `${path}-shm`];
    for (const file of files) await chmod(file, 0o644);
    // Opened again (as the next start of the server would), all three are 0600.
    const second = openDatabase(`sqlite:${path}`);
    try {
      for (const file of files) expect((await modeOf(file)).toString(8), file).toBe('600');
    } finally {
      await second.destroy();
      await first.destroy();
    }
  });
});
