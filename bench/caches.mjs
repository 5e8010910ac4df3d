// Step caches: a step's 100 MB node_modules-like tree (20,000 files in 2,000 packages) restored
// from its cache archive, against the same step without a cache building the tree as `npm ci`
// does with a warm npm cache and no network: one .tgz per package, each extracted into
// node_modules (8 at once). That baseline is the cheapest `npm ci` can be (no resolution, no
// download, no lifecycle scripts); a real one costs more. The cached side is the server's own
// code path (dist/server/caches/archive.js): the archive read from the filesystem blob store,
// checked and unpacked into a private staging directory, then moved into the workspace.
// Each side runs REPEAT times, alternating; reported as min/median/max. Needs `npm run build`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib.mjs';

const REPEAT = 3;
const PACKAGES = 2000;
const FILES_PER_PACKAGE = 10;
const TOTAL_BYTES = 100 * 1024 * 1024;
const dist = (p) => pathToFileURL(join(ROOT, 'dist', p)).href;

/** Source-like content: words and identifiers (compresses about as well as real JavaScript). */
function content(seed, size) {
  const words = [];
  let h = createHash('sha256').update(String(seed)).digest('hex');
  let length = 0;
  while (length < size) {
    h = createHash('sha256').update(h).digest('hex');
    const line = `export function f_${h.slice(0, 8)}(a, b) { return a.${h.slice(8, 14)} + b["${h.slice(14, 30)}"]; }\n`;
    words.push(line);
    length += line.length;
  }
  return words.join('').slice(0, size);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: round(s[0]), median: round(s[Math.floor(s.length / 2)]), max: round(s.at(-1)) };
};
const round = (x) => Math.round(x * 10) / 10;

/** CPU ms of this process and of its children that ended (GNU tar), from /proc. */
function cpuMs() {
  const own = process.cpuUsage();
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = 1000 / 100; // USER_HZ
  return (own.user + own.system) / 1000 + (Number(fields[13]) + Number(fields[14])) * tick;
}

// On a loaded machine wall time favours the side that runs more threads (it gets more of the
// CPU); CPU time is the cost that does not depend on the neighbours, so both are reported.
const cpu = { npm: [], cache: [] };
async function timed(fn, side) {
  const start = performance.now();
  const cpu0 = cpuMs();
  await fn();
  if (side) cpu[side].push(cpuMs() - cpu0);
  return performance.now() - start;
}

export async function benchCaches() {
  const archive = await import(dist('server/caches/archive.js'));
  const { FsBlobStore } = await import(dist('blobs/fs-blob-store.js'));
  const tar = await import('tar');
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-caches-'));
  try {
    // The tree, and the "npm cache": one tarball per package, as the registry serves them.
    const source = join(dir, 'source');
    const tarballs = join(dir, 'npm-cache');
    await mkdir(tarballs, { recursive: true });
    const perFile = Math.floor(TOTAL_BYTES / (PACKAGES * FILES_PER_PACKAGE));
    for (let p = 0; p < PACKAGES; p++) {
      const pkg = join(source, 'node_modules', `pkg-${p}`);
      await mkdir(join(pkg, 'lib'), { recursive: true });
      for (let f = 0; f < FILES_PER_PACKAGE; f++) {
        const name = f === 0 ? 'package.json' : `lib/file-${f}.js`;
        await writeFile(join(pkg, name), content(`${p}/${f}`, perFile));
      }
      await tar.c(
        {
          gzip: true,
          cwd: join(source, 'node_modules'),
          file: join(tarballs, `pkg-${p}.tgz`),
          portable: true,
        },
        [`pkg-${p}`],
      );
    }
    // The cache archive as a first build saves it, put in the blob store.
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const packed = join(dir, 'cache.tgz');
    const saveMs = await timed(async () => {
      await archive.packCache({ workspace: source }, ['node_modules'], packed, dir);
      await blobs.put('caches/1/bench.tgz', (await import('node:fs')).createReadStream(packed), {
        size: (await stat(packed)).size,
      });
    });
    const archiveBytes = (await stat(packed)).size;
    console.log(
      `tree: ${PACKAGES * FILES_PER_PACKAGE} files, ${(TOTAL_BYTES / 1024 / 1024).toFixed(0)} MB; cache archive ${(archiveBytes / 1024 / 1024).toFixed(1)} MB (saved in ${round(saveMs)} ms)`,
    );

    const withCache = [];
    const withoutCache = [];
    for (let i = 0; i < REPEAT; i++) {
      const ws1 = join(dir, `ws-npm-${i}`);
      await mkdir(join(ws1, 'node_modules'), { recursive: true });
      withoutCache.push(
        await timed(async () => {
          const names = Array.from({ length: PACKAGES }, (_, p) => `pkg-${p}.tgz`);
          const worker = async () => {
            for (let name = names.pop(); name !== undefined; name = names.pop())
              await tar.x({ file: join(tarballs, name), cwd: join(ws1, 'node_modules') });
          };
          await Promise.all(Array.from({ length: 8 }, worker));
        }, 'npm'),
      );
      const ws2 = join(dir, `ws-cache-${i}`);
      await mkdir(ws2, { recursive: true });
      withCache.push(
        await timed(async () => {
          const stage = await mkdtemp(join(dir, '.cache-restore-'));
          await archive.unpackToStage(await blobs.get('caches/1/bench.tgz'), stage, {
            maxBytes: 4096 * 1024 * 1024,
            maxEntries: 1_000_000,
          });
          await archive.placeStaged(stage, { workspace: ws2 });
          await rm(stage, { recursive: true, force: true });
        }, 'cache'),
      );
      const check = await stat(join(ws2, 'node_modules', 'pkg-7', 'lib', 'file-3.js'));
      if (check.size !== perFile) throw new Error('restored tree is incomplete');
      console.log(
        `run ${i + 1}: npm-ci-like ${round(withoutCache.at(-1))} ms (cpu ${round(cpu.npm.at(-1))} ms), cache restore ${round(withCache.at(-1))} ms (cpu ${round(cpu.cache.at(-1))} ms)`,
      );
      await rm(ws1, { recursive: true, force: true });
      await rm(ws2, { recursive: true, force: true });
    }
    const out = {
      files: PACKAGES * FILES_PER_PACKAGE,
      treeMB: TOTAL_BYTES / 1024 / 1024,
      archiveMB: round(archiveBytes / 1024 / 1024),
      saveMs: round(saveMs),
      npmCiLikeMs: stats(withoutCache),
      cacheRestoreMs: stats(withCache),
      npmCiLikeCpuMs: stats(cpu.npm),
      cacheRestoreCpuMs: stats(cpu.cache),
    };
    out.cpuRatio = round(out.npmCiLikeCpuMs.median / out.cacheRestoreCpuMs.median);
    out.speedup = round(out.npmCiLikeMs.median / out.cacheRestoreMs.median);
    console.log(JSON.stringify(out, null, 2));
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
