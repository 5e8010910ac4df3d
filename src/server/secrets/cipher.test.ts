import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KEY_FILE, SecretCipher, loadSecretKey, parseSecretKey } from './cipher.js';
import { SecretError } from './errors.js';

describe('SecretCipher (AES-256-GCM)', () => {
  const cipher = new SecretCipher(randomBytes(32));

  it('round-trips values, including multi-line and unicode ones', () => {
    for (const value of ['s3cr3t', 'line one\nline two\r\n', 'ünïcødé 🔑', 'x'.repeat(65536)]) {
      expect(cipher.open(cipher.seal(value, 'ctx'), 'ctx')).toBe(value);
    }
  });

  it('uses a fresh IV for every value: the same value seals differently each time', () => {
    const a = cipher.seal('same', 'ctx');
    const b = cipher.seal('same', 'ctx');
    expect(a).not.toBe(b);
    expect(a.split('.')[1]).not.toBe(b.split('.')[1]);
    expect(Buffer.from(a.split('.')[1]!, 'base64url').length).toBe(12);
    expect(Buffer.from(a.split('.')[2]!, 'base64url').length).toBe(16);
    expect(a).not.toContain('same');
  });

  it('detects any altered byte of IV, tag or ciphertext', () => {
    const sealed = cipher.seal('top secret value', 'ctx');
    const [version, iv, tag, body] = sealed.split('.') as [string, string, string, string];
    const flip = (text: string, at: number) => {
      const bytes = Buffer.from(text, 'base64url');
      bytes[at % bytes.length]! ^= 0x01;
      return bytes.toString('base64url');
    };
    for (const tampered of [
      [version, flip(iv, 0), tag, body],
      [version, iv, flip(tag, 5), body],
      [version, iv, tag, flip(body, 3)],
      [version, iv, tag, body + 'AA'],
    ]) {
      expect(() => cipher.open(tampered.join('.'), 'ctx')).toThrow(SecretError);
    }
    try {
      cipher.open([version, iv, tag, flip(body, 0)].join('.'), 'ctx');
    } catch (error) {
      expect(error).toMatchObject({
        code: 'tampered',
        message: expect.stringMatching(/another key|altered/) as unknown,
      });
    }
  });

  it('binds a value to its context: a value moved to another secret does not open', () => {
    const sealed = cipher.seal('value', 'secret:project:1:A');
    expect(() => cipher.open(sealed, 'secret:project:2:A')).toThrow(/does not authenticate/);
    expect(() => cipher.open(sealed, 'secret:project:1:B')).toThrow(/does not authenticate/);
  });

  it('does not open values sealed with another key, nor malformed ones', () => {
    const other = new SecretCipher(randomBytes(32));
    expect(() => other.open(cipher.seal('value'))).toThrow(/another key/);
    for (const bad of ['', 'v1', 'v2.a.b.c', 'v1.!!.b.c', 'v1.AAAA.BBBB.CCCC'])
      expect(() => cipher.open(bad)).toThrow(SecretError);
  });

  it('fits the webhook settings sealer (seal/open without a context)', () => {
    expect(cipher.open(cipher.seal('hook-key'))).toBe('hook-key');
  });
});

describe('parseSecretKey', () => {
  it('takes 64 hex digits or base64 (standard or url-safe) of 32 bytes', () => {
    const key = randomBytes(32);
    expect(parseSecretKey(key.toString('hex'), 'K')).toEqual(key);
    expect(parseSecretKey(`  ${key.toString('base64')}\n`, 'K')).toEqual(key);
    expect(parseSecretKey(key.toString('base64url'), 'K')).toEqual(key);
  });

  it('refuses anything else with a message that says the format', () => {
    for (const bad of [
      '',
      'short',
      randomBytes(16).toString('hex'),
      randomBytes(31).toString('base64'),
      'zz'.repeat(32),
      randomBytes(33).toString('base64'),
    ]) {
      expect(() => parseSecretKey(bad, 'SLIPWAY_SECRET_KEY')).toThrow(
        /SLIPWAY_SECRET_KEY is not a valid secret key: expected 32 bytes as 64 hex digits or as base64/,
      );
    }
  });
});

describe('loadSecretKey', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-key-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates <dataDir>/secret.key with mode 0600 on first start and reuses it after', async () => {
    const first = await loadSecretKey({ dataDir: dir, env: {} });
    expect(first.source).toBe('generated');
    const path = join(dir, KEY_FILE);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(path, 'utf8')).trim(), 'base64').length).toBe(32);
    const second = await loadSecretKey({ dataDir: dir, env: {} });
    expect(second.source).toBe('file');
    expect(second.cipher.open(first.cipher.seal('v'))).toBe('v');
  });

  it('creates it 0600 even under a permissive umask', async () => {
    const old = process.umask(0o000);
    try {
      await loadSecretKey({ dataDir: dir, env: {} });
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('refuses a key file that group or others can read, saying how to fix it', async () => {
    await loadSecretKey({ dataDir: dir, env: {} });
    const path = join(dir, KEY_FILE);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(path, mode);
      const attempt = loadSecretKey({ dataDir: dir, env: {} });
      await expect(attempt).rejects.toMatchObject({ code: 'key_file_permissions' });
      await expect(loadSecretKey({ dataDir: dir, env: {} })).rejects.toThrow(
        `Fix it with: chmod 600 ${path}`,
      );
    }
    await chmod(path, 0o400);
    await expect(loadSecretKey({ dataDir: dir, env: {} })).resolves.toMatchObject({ source: 'file' });
  });

  it('refuses a key file that holds no valid key', async () => {
    await writeFile(join(dir, KEY_FILE), 'not a key\n', { mode: 0o600 });
    await expect(loadSecretKey({ dataDir: dir, env: {} })).rejects.toThrow(/is not a valid secret key/);
  });

  it('prefers SLIPWAY_SECRET_KEY, creating no file, and refuses an invalid one', async () => {
    const key = randomBytes(32);
    const loaded = await loadSecretKey({ dataDir: dir, env: { SLIPWAY_SECRET_KEY: key.toString('hex') } });
    expect(loaded.source).toBe('env');
    expect(new SecretCipher(key).open(loaded.cipher.seal('v'))).toBe('v');
    await expect(stat(join(dir, KEY_FILE))).rejects.toThrow();
    await expect(loadSecretKey({ dataDir: dir, env: { SLIPWAY_SECRET_KEY: 'abc' } })).rejects.toMatchObject({
      code: 'invalid_key',
    });
  });

  it('gives every one of several processes starting at once the same key', async () => {
    const loaded = await Promise.all(
      Array.from({ length: 8 }, () => loadSecretKey({ dataDir: dir, env: {} })),
    );
    const sealed = loaded[0]!.cipher.seal('v');
    for (const l of loaded) expect(l.cipher.open(sealed)).toBe('v');
  });
});
