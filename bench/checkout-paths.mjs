// The checkout of one small commit both ways, interleaved in one run: through the mirror's
// cat-file (tree-checkout.ts, no git started) and git's path (pack-objects + read-tree).
// Usage: npx tsc -p tsconfig.build.json && node bench/checkout-paths.mjs [runs]
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeCheckout } from '../dist/server/sources/git-mirror.js';
import { closeCommitReader } from '../dist/server/sources/commit-reader.js';

const runs = Number(process.argv[2] ?? 200);
const root = await mkdtemp(join(tmpdir(), 'slipway-checkout-bench-'));
const repo = join(root, 'repo');
await mkdir(join(repo, 'src'), { recursive: true });
await writeFile(join(repo, '.slipway.yml'), 'steps:\n  - name: test\n    run: echo ok\n');
await writeFile(join(repo, 'README.md'), '# a trivial project\n');
await writeFile(join(repo, 'src', 'main.sh'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
const git = (...args) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
git('init', '--quiet', '-b', 'main');
git('add', '-A');
git('-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '--quiet', '-m', 'one');
const commit = git('rev-parse', 'HEAD');
const mirror = join(repo, '.git');
const gitPath = { read: () => Promise.reject(new Error('git path')) };

const times = { tree: [], git: [] };
const cpu = { tree: 0, git: 0 };
for (let i = -5; i < runs; i++) {
  for (const way of i % 2 ? ['tree', 'git'] : ['git', 'tree']) {
    const dir = join(root, `co-${way}`);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const took = await makeCheckout(mirror, dir, commit, 'file:///x', undefined, ...(way === 'git' ? [gitPath] : []));
    const ms = performance.now() - t0;
    const used = process.cpuUsage(c0);
    if (took !== way) throw new Error(`expected the ${way} path, took ${took}`);
    if (i >= 0) {
      times[way].push(ms);
      cpu[way] += (used.user + used.system) / 1000;
    }
  }
}
const stats = (list) => {
  const s = [...list].sort((a, b) => a - b);
  return `min ${s[0].toFixed(2)} median ${s[s.length >> 1].toFixed(2)} max ${s[s.length - 1].toFixed(2)} ms`;
};
for (const way of ['git', 'tree'])
  console.log(`${way.padEnd(4)} ${stats(times[way])}; this process's CPU ${(cpu[way] / runs).toFixed(2)} ms/checkout`);
const median = (l) => [...l].sort((a, b) => a - b)[l.length >> 1];
console.log(`tree/git median ratio ${(median(times.tree) / median(times.git)).toFixed(2)} (${runs} runs each)`);
closeCommitReader(mirror);
await rm(root, { recursive: true, force: true });
process.exit(0);
