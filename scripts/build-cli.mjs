// Bundles the command line into dist/bundle/ (part of `npm run build`, after tsc).
//
// Why: Node loads an ES module graph file by file (resolve, stat, read, compile each), and
// `slipway validate` reached ~380 files (200 of them TypeBox's). One bundle of the CLI plus a
// few chunks cuts its start-up by more than half. Everything the CLI imports only dynamically
// (the server, the container and Kubernetes executors) becomes chunks of its own, loaded when a
// command needs them, so there is one copy of every module (one `ExecutorError` class, one
// compile pool) whichever command runs.
//
// Only light pure-JS packages are bundled: those on the CLI's path, and Kysely (262 files the
// server loaded one by one: 9 MB of its idle memory). Every other dependency stays an import of
// node_modules (native addons, the AWS SDK, pg...), so a new dependency is external unless it
// is added to BUNDLED. bin/slipway.js runs dist/cli/bin.js (tsc's output)
// instead when this bundle is older than the last tsc build.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist', 'bundle');
const BUNDLED = new Set(['commander', 'yaml', '@sinclair/typebox', 're2js', 'kysely']);

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const external = Object.keys(manifest.dependencies)
  .filter((name) => !BUNDLED.has(name))
  .flatMap((name) => [name, `${name}/*`]);

rmSync(OUT, { recursive: true, force: true });
const { outputFiles } = await build({
  absWorkingDir: ROOT,
  write: false,
  // The compile worker is started by URL next to the module that starts it (compile-pool.ts:
  // `./compile-worker.js`), so it is an entry point of its own in the same directory. The
  // bundle sits two levels below the root like dist/cli/, so `../../package.json` and
  // `../../web/dist` resolve as they do from tsc's output.
  entryPoints: [
    { in: 'src/cli/bin.ts', out: 'bin' },
    { in: 'src/pipeline/compile-worker.ts', out: 'compile-worker' },
    { in: 'src/reports/parse-worker.ts', out: 'parse-worker' },
  ],
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  chunkNames: '[name]-[hash]',
  sourcemap: 'linked',
  // commander is CommonJS: its require() calls of Node's modules need a `require` in scope.
  banner: {
    js: "import { createRequire as __slipwayCreateRequire } from 'node:module'; const require = __slipwayCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// V8 keeps a module's source for as long as the module lives, one byte a character only if
// every character is Latin-1: one `…` in a comment (esbuild escapes non-ASCII in code, not in
// the comments it keeps) stores the whole 1 MB server chunk as 2 MB. Comments are all that
// can hold such characters, so they are escaped there (only the source map's columns after
// one on its own line move).
for (const file of outputFiles) {
  mkdirSync(dirname(file.path), { recursive: true });
  const text = file.path.endsWith('.js')
    ? file.text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : file.contents;
  writeFileSync(file.path, text);
}
