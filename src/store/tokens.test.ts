import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import {
  TOKEN_PREFIX,
  createInitialAdminToken,
  createToken,
  listTokens,
  revokeToken,
  verifyToken,
} from './tokens.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: tokens`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('creates the first admin token once, even when two servers start together', async () => {
      await t.reset();
      const other = t.openAnother();
      const first = await Promise.all(
        dialect === 'postgres'
          ? [createInitialAdminToken(t.db), createInitialAdminToken(other), createInitialAdminToken(t.db)]
          : [createInitialAdminToken(t.db), createInitialAdminToken(t.db)],
      );
      const created = first.filter((c) => c !== undefined);
      expect(created).toHaveLength(1);
      expect(created[0]!.info.role).toBe('admin');
      expect(await createInitialAdminToken(t.db)).toBeUndefined();
    });

    it('stores only a hash and verifies the plain token', async () => {
      const { token, info } = await createToken(t.db, { name: 'ci', role: 'member' }, 1000);
      expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
      expect(token.length).toBeGreaterThan(40);
      const row = await t.db
        .selectFrom('tokens')
        .selectAll()
        .where('id', '=', info.id)
        .executeTakeFirstOrThrow();
      expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(row)).not.toContain(token.slice(TOKEN_PREFIX.length));

      expect(await verifyToken(t.db, token, 5000)).toMatchObject({
        id: info.id,
        role: 'member',
        lastUsedAt: 5000,
      });
      expect(await verifyToken(t.db, `${token}x`)).toBeUndefined();
      expect(await verifyToken(t.db, 'not-a-token')).toBeUndefined();
    });

    it('writes last use at most once a minute', async () => {
      const { token } = await createToken(t.db, { name: 'often', role: 'viewer' });
      expect((await verifyToken(t.db, token, 100_000))?.lastUsedAt).toBe(100_000);
      expect((await verifyToken(t.db, token, 130_000))?.lastUsedAt).toBe(100_000);
      expect((await verifyToken(t.db, token, 160_000))?.lastUsedAt).toBe(160_000);
    });

    it('lists without secrets and revokes for good', async () => {
      const { token, info } = await createToken(t.db, { name: 'old', role: 'viewer' });
      expect(await revokeToken(t.db, info.id)).toBe(true);
      expect(await revokeToken(t.db, info.id)).toBe(false);
      expect(await revokeToken(t.db, 999_999)).toBe(false);
      expect(await verifyToken(t.db, token)).toBeUndefined();
      const listed = (await listTokens(t.db)).find((x) => x.id === info.id);
      expect(listed).toEqual({ ...info, revoked: true });
      expect(Object.keys(listed!)).not.toContain('hash');
    });

    it('refuses an empty name or unknown role', async () => {
      await expect(createToken(t.db, { name: '', role: 'admin' })).rejects.toMatchObject({ code: 'invalid' });
      await expect(createToken(t.db, { name: 'x', role: 'root' as 'admin' })).rejects.toMatchObject({
        code: 'invalid',
      });
    });
  });
}
