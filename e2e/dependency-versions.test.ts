import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './cli-helpers.js';

const run = promisify(execFile);
const SCRIPT = join(ROOT, 'scripts', 'dependency-versions.mjs');

/**
 * `npm audit` cannot always reach its advisory service, so the README states the versions in
 * use (issue 10). The table is generated from package-lock.json; these tests keep it true.
 */
describe('README: dependency versions', () => {
  it('the generated table lists every direct dependency at the version installed', async () => {
    const { stdout } = await run(process.execPath, [SCRIPT]);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const names = [...Object.keys(manifest.dependencies), ...Object.keys(manifest.devDependencies)].filter(
      (name) => !name.startsWith('@types/'),
    );
    for (const name of names) {
      const installed = (
        JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      expect(stdout).toContain(`| \`${name}\` | ${installed} |`);
    }
    expect(stdout.match(/^\| `/gm)).toHaveLength(names.length);
  });

  it('README.md has the table as the script prints it (regenerate: node scripts/dependency-versions.mjs)', async () => {
    const { stdout } = await run(process.execPath, [SCRIPT]);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(stdout.trimEnd());
    // The script's own check agrees (what a CI step or a person would run).
    await expect(run(process.execPath, [SCRIPT, '--check'])).resolves.toBeDefined();
  });
});
