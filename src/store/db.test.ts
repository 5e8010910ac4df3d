import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialectOf, openDatabase, parseDatabaseUrl } from './db.js';
import { isStoreError } from './errors.js';
import { migrateToLatest } from './migrate.js';
import { migrations } from './migrations/index.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import { writeTransaction } from './transaction.js';

describe('parseDatabaseUrl', () => {
  it.each([
    ['sqlite:/var/lib/slipway/db.sqlite', { dialect: 'sqlite', path: '/var/lib/slipway/db.sqlite' }],
    ['sqlite:///abs/db.sqlite', { dialect: 'sqlite', path: '/abs/db.sqlite' }],
    ['sqlite:rel/db.sqlite', { dialect: 'sqlite', path: 'rel/db.sqlite' }],
    ['sqlite::memory:', { dialect: 'sqlite', path: ':memory:' }],
    [':memory:', { dialect: 'sqlite', path: ':memory:' }],
    ['./.slipway-data/slipway.db', { dialect: 'sqlite', path: './.slipway-data/slipway.db' }],
    ['postgres://u:p@h:5432/d', { dialect: 'postgres', url: 'postgres://u:p@h:5432/d' }],
    ['postgresql://h/d', { dialect: 'postgres', url: 'postgresql://h/d' }],
  ])('%s', (url, expected) => {
    expect(parseDatabaseUrl(url)).toEqual(expected);
  });

  it('rejects other schemes without echoing a password', () => {
    let caught: unknown;
    try {
      parseDatabaseUrl('mysql://root:hunter2@db/x');
    } catch (err) {
      caught = err;
    }
    expect(isStoreError(caught, 'unsupported_url')).toBe(true);
    expect((caught as Error).message).not.toContain('hunter2');
    expect(() => parseDatabaseUrl('')).toThrow(/empty/);
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/names no file/);
  });
});

describe('openDatabase (sqlite)', () => {
  it('opens a file in WAL mode with foreign keys on', async () => {
    const t = await openTestDatabase('sqlite');
    try {
      const { rows: journal } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db);
      const { rows: fk } = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(t.db);
      const { rows: busy } = await sql<{ timeout: number }>`pragma busy_timeout`.execute(t.db);
      expect(journal[0]?.journal_mode).toBe('wal');
      expect(fk[0]?.foreign_keys).toBe(1);
      expect(busy[0]?.timeout).toBe(5000);
    } finally {
      await t.destroy();
    }
  });

  it('opens :memory:', async () => {
    const db = openDatabase(':memory:');
    try {
      expect(await migrateToLatest(db)).toEqual(Object.keys(migrations('sqlite')));
    } finally {
      await db.destroy();
    }
  });

  it('reports a path it cannot open as unavailable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-open-'));
    try {
      await writeFile(join(dir, 'file'), '');
      expect(() => openDatabase(`sqlite:${join(dir, 'file', 'slipway.db')}`)).toThrow(
        expect.objectContaining({ code: 'unavailable' }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('knows only instances it opened', async () => {
    const db = openDatabase(':memory:');
    try {
      expect(dialectOf(db)).toBe('sqlite');
      await db.transaction().execute(async (trx) => {
        expect(() => dialectOf(trx)).toThrow(expect.objectContaining({ code: 'invalid' }));
        return Promise.resolve();
      });
    } finally {
      await db.destroy();
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`${dialect}: database`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('migrates once; later calls apply nothing', async () => {
      expect(await migrateToLatest(t.db)).toEqual([]);
      const other = t.openAnother();
      expect(await migrateToLatest(other)).toEqual([]);
    });

    it('returns ids, counts and epoch-ms times as numbers', async () => {
      const now = 1_760_000_000_123;
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id, {}, now);
      expect(typeof b.id).toBe('number');
      expect(b.createdAt).toBe(now);
      const row = await t.db
        .selectFrom('builds')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(typeof row.n).toBe('number');
    });

    it('rolls a write transaction back as a whole', async () => {
      const p = await makeProject(t.db);
      await expect(
        writeTransaction(t.db, async (trx) => {
          await makeBuild(trx, p.id);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const n = await t.db.selectFrom('builds').select('id').where('project_id', '=', p.id).execute();
      expect(n).toEqual([]);
      // The number was given back: the next build is #1.
      expect((await makeBuild(t.db, p.id)).number).toBe(1);
    });

    it('joins an enclosing write transaction instead of nesting', async () => {
      const p = await makeProject(t.db);
      const numbers = await writeTransaction(t.db, async (trx) => {
        const a = await makeBuild(trx, p.id);
        const b = await makeBuild(trx, p.id);
        return [a.number, b.number];
      });
      expect(numbers).toEqual([1, 2]);
    });
  });
}

describe.runIf(DIALECTS.includes('postgres'))('postgres: migrations from two processes', () => {
  it('run once when two servers start together', async () => {
    const t = await openTestDatabase('postgres');
    try {
      // openTestDatabase migrated already; roll back to empty and race two fresh instances.
      await sql`drop schema public cascade; create schema public`.execute(t.db);
      const [a, b] = [t.openAnother(), t.openAnother()];
      const [ra, rb] = await Promise.all([migrateToLatest(a), migrateToLatest(b)]);
      expect([...ra, ...rb].sort()).toEqual(Object.keys(migrations('postgres')));
    } finally {
      await t.destroy();
    }
  });
});
