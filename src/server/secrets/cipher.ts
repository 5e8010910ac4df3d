import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SecretError } from './errors.js';

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/** Name of the generated key file in the data directory. */
export const KEY_FILE = 'secret.key';
/** Environment variable that holds the key (wins over the key file). */
export const KEY_ENV = 'SLIPWAY_SECRET_KEY';

const KEY_FORMAT_HELP = `32 bytes as 64 hex digits or as base64 (make one with \`openssl rand -base64 32\`)`;

/**
 * Seals and opens small values (secrets, webhook keys) with AES-256-GCM: a random 12-byte IV
 * per value and the 16-byte tag stored with it, so a changed byte, a value moved to another
 * secret (the `context` is authenticated too) or another key is detected, never decrypted to
 * garbage. Sealed form: `v1.<iv>.<tag>.<ciphertext>`, base64url, safe in any text column.
 *
 * Also fits the `SecretSealer` the webhook settings use (`seal(plain)` / `open(sealed)`).
 */
export class SecretCipher {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES)
      throw new SecretError('invalid_key', `the secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.key = Buffer.from(key);
  }

  seal(plain: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(context));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [
      VERSION,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      body.toString('base64url'),
    ].join('.');
  }

  /** The plain value; throws `SecretError('tampered')` when the value does not authenticate. */
  open(sealed: string, context = ''): string {
    const parts = sealed.split('.');
    const [version, ivText, tagText, bodyText] = parts;
    if (
      parts.length !== 4 ||
      version !== VERSION ||
      ivText === undefined ||
      tagText === undefined ||
      bodyText === undefined
    ) {
      throw new SecretError('tampered', 'the sealed value is malformed');
    }
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES)
      throw new SecretError('tampered', 'the sealed value is malformed');
    try {
      const decipher = createDecipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(bodyText, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch (cause) {
      throw new SecretError(
        'tampered',
        'the sealed value does not authenticate: it was sealed with another key (SLIPWAY_SECRET_KEY or secret.key changed) or altered',
        { cause },
      );
    }
  }
}

function aad(context: string): Buffer {
  return Buffer.from(`slipway:${context}`, 'utf8');
}

/** Decodes a key written as 64 hex digits or base64 (standard or url-safe); throws with the format otherwise. */
export function parseSecretKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed))
    key = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
  if (key === undefined || key.length !== KEY_BYTES) {
    throw new SecretError('invalid_key', `${where} is not a valid secret key: expected ${KEY_FORMAT_HELP}`);
  }
  return key;
}

export interface LoadedKey {
  cipher: SecretCipher;
  /** Where the key came from, for the start-up message. */
  source: 'env' | 'file' | 'generated';
  path?: string;
}

/**
 * The server's secret key: `SLIPWAY_SECRET_KEY` if set, else `<dataDir>/secret.key`, created
 * on first start with 32 random bytes and mode 0600. An existing key file that group or
 * others may read is refused (with the `chmod` that fixes it) rather than used: whoever can
 * read it can open every secret in the database.
 */
export async function loadSecretKey(options: {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
}): Promise<LoadedKey> {
  const env = options.env ?? process.env;
  const fromEnv = env[KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { cipher: new SecretCipher(parseSecretKey(fromEnv, KEY_ENV)), source: 'env' };
  }
  const path = join(options.dataDir, KEY_FILE);
  const existing = await readKeyFile(path);
  if (existing !== undefined) return { cipher: new SecretCipher(existing), source: 'file', path };
  const key = randomBytes(KEY_BYTES);
  // Written whole under a temp name, then hard-linked into place: the key file never exists
  // half-written, and if another server process made one meanwhile, `link` fails and that
  // one is used.
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${key.toString('base64')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = await readKeyFile(path);
      if (raced !== undefined) return { cipher: new SecretCipher(raced), source: 'file', path };
    }
    throw new SecretError('key_file', `cannot create the secret key file ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return { cipher: new SecretCipher(key), source: 'generated', path };
}

async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SecretError('key_file', `cannot read the secret key file ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new SecretError(
      'key_file_permissions',
      `the secret key file ${path} can be read by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `Slipway refuses to use it. Fix it with: chmod 600 ${path}  (or set ${KEY_ENV} instead)`,
    );
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SecretError('key_file', `cannot read the secret key file ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return parseSecretKey(text, `the key file ${path}`);
}

/** Only for tests and tools: a cipher with a fresh random key. */
export function randomCipher(): SecretCipher {
  return new SecretCipher(randomBytes(KEY_BYTES));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
