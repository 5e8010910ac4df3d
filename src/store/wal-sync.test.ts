import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBuild } from './builds.js';
import { openDatabase, walSyncOf } from './db.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './schema.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import { writeTransaction } from './transaction.js';
import { WalSync } from './wal-sync.js';

const synchronous = async (db: Kysely<Database>) =>
  (await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]!.synchronous;

describe('full SQLite commits: the WAL fsync off the event loop', () => {
  let dir: string;
  let db: Kysely<Database>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-wal-'));
    db = openDatabase(`sqlite:${join(dir, 'slipway.db')}`);
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('a full transaction commits unsynced, then returns only after an fsync of the WAL', async () => {
    const wal = walSyncOf(db)!;
    expect(wal.walPath).toBe(join(dir, 'slipway.db-wal'));
    const p = await makeProject(db);
    const b = await makeBuild(db, p.id);
    const before = wal.syncs;
    const inside = await writeTransaction(db, async (trx) => {
      await trx.updateTable('builds').set({ commit_sha: 'abc' }).where('id', '=', b.id).execute();
      return synchronous(trx);
    });
    expect(inside).toBe(1); // NORMAL: the fsync is WalSync's
    expect(wal.syncs).toBe(before + 1);
    expect(await synchronous(db)).toBe(2); // what runs outside transactions stays FULL
    expect((await getBuild(db, b.id))?.commitSha).toBe('abc');
  });

  it('a failed full transaction syncs nothing', async () => {
    const wal = walSyncOf(db)!;
    const before = wal.syncs;
    await expect(
      writeTransaction(db, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(wal.syncs).toBe(before);
  });

  it('an in-memory database has no WAL: its full transactions sync as SQLite does', async () => {
    const memory = openDatabase(':memory:');
    try {
      expect(walSyncOf(memory)).toBeUndefined();
      expect(await writeTransaction(memory, (trx) => synchronous(trx))).toBe(2);
    } finally {
      await memory.destroy();
    }
  });
});

describe('WalSync', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-walsync-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('callers waiting at once share fsyncs, none answered by one that started before it asked', async () => {
    const path = join(dir, 'a-wal');
    await writeFile(path, 'x');
    const wal = new WalSync(path);
    try {
      await Promise.all(Array.from({ length: 20 }, () => wal.sync()));
      // The first starts an fsync; the 19 after it (it may predate their commits) share one more.
      expect(wal.syncs).toBe(2);
      await wal.sync();
      expect(wal.syncs).toBe(3);
    } finally {
      wal.close();
    }
  });

  it('a WAL that does not exist (yet) has nothing to sync; a replaced one is opened again', async () => {
    const path = join(dir, 'b-wal');
    const wal = new WalSync(path);
    try {
      await wal.sync();
      await writeFile(path, 'x');
      await wal.sync();
      await rm(path);
      await wal.sync();
      await writeFile(path, 'y');
      await wal.sync();
      expect(wal.syncs).toBe(4);
    } finally {
      wal.close();
    }
  });
});
