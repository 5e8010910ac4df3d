#!/usr/bin/env node
// Node 22.1+ can cache compiled modules on disk: start-up is most of a short `slipway run`.
import { statSync } from 'node:fs';
import module from 'node:module';
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
// `npm run build` also bundles the CLI into dist/bundle/ (scripts/build-cli.mjs), which starts
// in less than half the time of tsc's hundreds of files. A tsc build alone (`tsc -p
// tsconfig.build.json`) leaves that bundle older than dist/: then tsc's output runs, never stale code.
const dist = new URL('../dist/', import.meta.url);
let entry = new URL('cli/bin.js', dist);
try {
  const bundle = new URL('bundle/bin.js', dist);
  if (statSync(bundle).mtimeMs >= statSync(new URL('.tsbuildinfo', dist)).mtimeMs) entry = bundle;
} catch {
  // No bundle (or no tsc build info): tsc's output.
}
await import(entry.href);
