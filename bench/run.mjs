// One command for every benchmark: `npm run bench` (all) or `npm run bench -- local docker`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const SUITES = {
  local: async () => (await import('./local.mjs')).benchLocal(),
  docker: async () => (await import('./docker-overhead.mjs')).benchDocker(),
  server: async () => (await import('./server.mjs')).benchServer(),
  web: async () => (await import('./web.mjs')).benchWeb(),
  seed: async () => (await import('./seed.mjs')).benchSeed(),
  kubernetes: async () => (await import('./kubernetes.mjs')).benchKubernetes(),
  startup: async () => (await import('./startup.mjs')).benchStartup(),
  peer: async () => (await import('./peer.mjs')).benchPeer(),
  reports: async () => (await import('./reports.mjs')).benchReports(),
  caches: async () => (await import('./caches.mjs')).benchCaches(),
};

const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : Object.keys(SUITES);
const all = {};
for (const name of names) {
  if (!SUITES[name]) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== ${name} ==`);
  all[name] = await SUITES[name]();
}
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
const file = join(ROOT, 'bench', 'results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify(all, null, 2));
console.log(`\nresults written to ${file}`);
