// What the quick commands load. `slipway validate` and `--help` must start in about twice the
// time of a bare `node` (bench/startup.mjs measures it); the way that is lost is a static import
// that drags the server, a database driver or a cloud SDK onto their path. So this asserts on
// the set of modules a real `slipway` process loaded, never on its time.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { collect, ROOT, SLIPWAY_BIN, workdir } from './cli-helpers.js';
import { spawn } from 'node:child_process';

/** Packages (and parts of tsc's dist/) that only `slipway server`, `run` or the like may load. */
const HEAVY = [
  /\/node_modules\/fastify\//,
  /\/node_modules\/@aws-sdk\//,
  /\/node_modules\/pg\//,
  /\/node_modules\/@kubernetes\/client-node\//,
  /\/node_modules\/dockerode\//,
  /\/node_modules\/better-sqlite3\//,
  /\/node_modules\/kysely\//,
  /\/node_modules\/openid-client\//,
  /\/node_modules\/nodemailer\//,
  /\/node_modules\/prom-client\//,
  /\/dist\/(server|store|orchestrator)\//,
  /\/dist\/executors\/(local|docker|kubernetes\/client)\//,
];

// Preloaded with --import: ES modules are seen by a loader hook (in the hooks' thread, hence a
// file), CommonJS modules (require()d ones included) in require's cache when the process exits.
const PROBE = `
import { appendFileSync } from 'node:fs';
import module, { createRequire } from 'node:module';
const out = process.env.SLIPWAY_MODULE_PROBE;
module.register('./hooks.mjs', import.meta.url, { data: { out } });
process.on('exit', () => {
  appendFileSync(out, Object.keys(createRequire(import.meta.url).cache).map((f) => f + '\\n').join(''));
});
`;
const HOOKS = `
import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(out, new URL(url).pathname + '\\n');
  return next(url, context);
}
`;

let dir: string;
beforeAll(async () => {
  dir = await workdir({
    'probe.mjs': PROBE,
    'hooks.mjs': HOOKS,
    'small.yml': 'steps:\n  - name: test\n    image: busybox\n    commands: [echo hi]\n',
    'pattern.yml':
      'stages:\n  - name: release\n    when: { branch: "main|release/.*" }\n    steps:\n      - { name: x, commands: [x] }\n',
  });
});

let runs = 0;
/** Runs `node <entry> ...args` with the probe; its exit code, output and the files it loaded. */
async function loaded(entry: string, args: string[]) {
  const out = join(dir, `loaded-${++runs}.txt`);
  await writeFile(out, '');
  const child = spawn(
    process.execPath,
    ['--import', pathToFileURL(join(dir, 'probe.mjs')).href, entry, ...args],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', SLIPWAY_MODULE_PROBE: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const result = await collect(child);
  const files = (await readFile(out, 'utf8')).split('\n').filter(Boolean);
  return { ...result, files, heavy: files.filter((f) => HEAVY.some((re) => re.test(f))) };
}

// bin/slipway.js runs the bundle of `npm run build`, or tsc's output when only tsc ran since:
// both are checked, whichever is current first.
const ENTRIES = [
  ['bin/slipway.js', SLIPWAY_BIN],
  ["tsc's dist/cli/bin.js", join(ROOT, 'dist', 'cli', 'bin.js')],
] as const;

describe.each(ENTRIES)('quick commands through %s', (_name, entry) => {
  it('`slipway validate` of a small file loads no server, database, engine, cloud or cluster client, nor RE2', async () => {
    const result = await loaded(entry, ['validate', '-f', 'small.yml']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('ok\n');
    expect(result.files).toContain(entry);
    expect(result.heavy).toEqual([]);
    expect(result.files.filter((f) => f.includes('/node_modules/re2js/'))).toEqual([]);
  });

  it('`slipway --help` loads none of them either', async () => {
    const result = await loaded(entry, ['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('validate');
    expect(result.heavy).toEqual([]);
  });

  it('RE2 is loaded once a file has a pattern (the probe sees what is loaded on demand)', async () => {
    const result = await loaded(entry, ['validate', '-f', 'pattern.yml']);
    expect(result.stdout).toBe('ok\n');
    expect(result.files.some((f) => f.includes('/node_modules/re2js/'))).toBe(true);
    expect(result.heavy).toEqual([]);
  });
});

describe('the bundle of `npm run build`', () => {
  // V8 keeps each module's source while it lives, at two bytes a character if one character is
  // not Latin-1: the server's 1 MB chunk would take 2 MB of its memory (scripts/build-cli.mjs).
  it('is ASCII, so V8 keeps its sources at one byte a character', async () => {
    const bundle = join(ROOT, 'dist', 'bundle');
    const files = (await readdir(bundle)).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(1);
    const wide = [];
    for (const file of files) {
      const at = (await readFile(join(bundle, file), 'utf8')).search(/[\u0080-\uffff]/);
      if (at >= 0) wide.push(`${file} at ${at}`);
    }
    expect(wide).toEqual([]);
  });
});
