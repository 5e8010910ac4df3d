import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar } from './tar-reader.js';

describe('readTar', () => {
  let dir: string;
  const longDir = 'd'.repeat(90);
  const longName = `${longDir}/${'f'.repeat(120)}.txt`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-tar-'));
    await mkdir(join(dir, 'src', longDir), { recursive: true });
    await writeFile(join(dir, 'src', 'a.txt'), 'hello');
    await writeFile(join(dir, 'src', 'big.bin'), Buffer.alloc(700_000, 7));
    await writeFile(join(dir, 'src', longName), 'long');
    await writeFile(join(dir, 'src', 'ünï.txt'), 'u');
    await symlink('a.txt', join(dir, 'src', 'link'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const tarOf = (format: string) =>
    execFileSync(
      'tar',
      [
        `--format=${format}`,
        '-C',
        dir,
        '-cf',
        '-',
        '--sort=name',
        ...(format === 'ustar' ? [`--exclude=${longDir}`, '--exclude=ünï.txt'] : []),
        'src',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );

  for (const format of ['pax', 'gnu', 'ustar']) {
    it(`reads ${format} archives: names, types, link targets, streamed bodies`, async () => {
      const archive = tarOf(format);
      // Deliver in odd-sized chunks, as a socket would.
      const chunks: Buffer[] = [];
      for (let i = 0; i < archive.length; i += 777) chunks.push(archive.subarray(i, i + 777));
      const seen: Record<string, { type: string; size: number; link: string; body?: string }> = {};
      for await (const entry of readTar(Readable.from(chunks))) {
        let body: string | undefined;
        if (entry.body && entry.name !== 'src/big.bin') {
          const parts: Buffer[] = [];
          for await (const c of entry.body) parts.push(c as Buffer);
          body = Buffer.concat(parts).toString();
        }
        seen[entry.name.replace(/\/$/, '')] = {
          type: entry.type,
          size: entry.size,
          link: entry.linkName,
          ...(body !== undefined ? { body } : {}),
        };
      }
      expect(seen['src/a.txt']).toEqual({ type: 'file', size: 5, link: '', body: 'hello' });
      expect(seen['src/link']).toMatchObject({ type: 'symlink', link: 'a.txt' });
      expect(seen['src/big.bin']).toMatchObject({ type: 'file', size: 700_000 });
      expect(seen['src']?.type).toBe('directory');
      if (format !== 'ustar') {
        expect(seen[`src/${longName}`]).toMatchObject({ type: 'file', body: 'long' });
        expect(seen['src/ünï.txt']).toMatchObject({ body: 'u' });
      }
    });
  }

  it('fails on a stream cut inside a file', async () => {
    const archive = tarOf('pax');
    const cut = archive.subarray(0, 3000);
    await expect(async () => {
      for await (const entry of readTar(Readable.from([cut]))) {
        if (entry.body) for await (const _ of entry.body);
      }
    }).rejects.toThrow(/tar:/);
  });
});
