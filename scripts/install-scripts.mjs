#!/usr/bin/env node
// Prints the names of the installed packages that have install scripts (what `npm rebuild`
// would run), but those given after --except, for scripts/test.sh --rebuild.
//
//   npm rebuild $(node scripts/install-scripts.mjs --except ssh2 cpu-features)
//
// It reads the hidden lock file `npm ci` writes (node_modules/.package-lock.json): `npm query`
// answers the same in seconds, this in milliseconds.
import { readFileSync } from 'node:fs';

const [flag, ...except] = process.argv.slice(2);
if (flag !== undefined && flag !== '--except') {
  console.error('usage: install-scripts.mjs [--except <package>...]');
  process.exit(2);
}
const lock = JSON.parse(readFileSync(new URL('../node_modules/.package-lock.json', import.meta.url), 'utf8'));
const names = Object.entries(lock.packages)
  .filter(([, entry]) => entry.hasInstallScript === true)
  .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
  .filter((name) => !except.includes(name));
if (names.length === 0) {
  // `npm rebuild` with no names rebuilds everything.
  console.error('install-scripts.mjs: no package with an install script is left');
  process.exit(1);
}
console.log([...new Set(names)].join(' '));
