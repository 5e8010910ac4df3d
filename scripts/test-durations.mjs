#!/usr/bin/env node
// Writes test-durations.json (test file → milliseconds) from the output of a whole `vitest run`
// read on stdin, for vitest.sequencer.ts: on a clean clone Vitest knows no durations and would
// start the longest files last, where they become the tail of the run.
//
//   npx vitest run | node scripts/test-durations.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const text = readFileSync(0, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
const durations = {};
// A file's line names its project (vitest.config.ts) first: ` ✓  shared  src/x.test.ts (3 tests) 12ms`.
for (const match of text.matchAll(/^\s*[✓❯×↓] +(?:\S+ +)?(\S+\.test\.ts) \([^)]*\) (\d+)ms/gm)) {
  durations[match[1]] = Number(match[2]);
}
const sorted = Object.fromEntries(Object.entries(durations).sort(([a], [b]) => a.localeCompare(b, 'en')));
if (Object.keys(sorted).length === 0) {
  console.error('no "✓ file (n tests) Nms" lines on stdin: pipe the output of a whole `vitest run`');
  process.exit(1);
}
writeFileSync(new URL('../test-durations.json', import.meta.url), `${JSON.stringify(sorted, null, 2)}\n`);
console.log(`test-durations.json: ${Object.keys(sorted).length} files`);
