import { BlobError } from './errors.js';

/**
 * Refuses a key that could step out of its store or alias another key: empty, absolute, a
 * backslash (a separator on Windows), a NUL, or an empty / `.` / `..` segment.
 */
export function checkKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined)
    throw new BlobError('invalid_key', `invalid blob key ${JSON.stringify(key)}: ${problem}`);
}

/** Like {@link checkKey} for a list/delete prefix, which may also be empty or end in `/`. */
export function checkPrefix(prefix: string): void {
  if (prefix === '') return;
  const problem = keyProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  if (problem !== undefined)
    throw new BlobError('invalid_key', `invalid blob prefix ${JSON.stringify(prefix)}: ${problem}`);
}

function keyProblem(key: string): string | undefined {
  if (key === '') return 'it is empty';
  if (key.startsWith('/')) return 'it is absolute';
  if (key.includes('\\')) return 'it contains a backslash';
  if (key.includes('\0')) return 'it contains a NUL character';
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty segment';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
  }
  return undefined;
}

/** Compares keys in UTF-8 byte order, the order S3 lists in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
