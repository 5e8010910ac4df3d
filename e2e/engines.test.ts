import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { ROOT } from './cli-helpers.js';

interface Installed {
  /** Path under the project, e.g. `node_modules/fastify/node_modules/cookie`. */
  path: string;
  name: string;
  version: string;
  node: string | undefined;
}

/** Every package installed under `dir/node_modules`, nested ones and scoped ones included. */
function installedPackages(dir: string, prefix = ''): Installed[] {
  const found: Installed[] = [];
  const modules = join(dir, 'node_modules');
  let entries: string[];
  try {
    entries = readdirSync(modules);
  } catch {
    return found;
  }
  const packageDirs = entries.flatMap((entry) => {
    if (entry.startsWith('.')) return [];
    if (!entry.startsWith('@')) return [entry];
    try {
      return readdirSync(join(modules, entry)).map((inner) => `${entry}/${inner}`);
    } catch {
      return [];
    }
  });
  for (const name of packageDirs) {
    const path = join(modules, name);
    let manifest: { name?: string; version?: string; engines?: { node?: unknown } };
    try {
      manifest = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as typeof manifest;
    } catch {
      continue; // not a package (a stray folder, a broken link)
    }
    const node = manifest.engines?.node;
    found.push({
      path: `${prefix}node_modules/${name}`,
      name: manifest.name ?? name,
      version: manifest.version ?? '?',
      node: typeof node === 'string' ? node : undefined,
    });
    found.push(...installedPackages(path, `${prefix}node_modules/${name}/`));
  }
  return found;
}

/**
 * The packages whose `engines.node` leaves out the oldest Node the project says it runs on
 * (the lowest version of its own `engines.node` range): with them `npm ci` warns EBADENGINE
 * and the code may use what that Node lacks.
 */
function engineViolations(projectRange: string, packages: readonly Installed[]): string[] {
  const oldest = semver.minVersion(projectRange);
  if (oldest === null) throw new Error(`engines.node "${projectRange}" admits no version`);
  return packages
    .filter((p) => p.node !== undefined && !semver.satisfies(oldest, p.node))
    .map((p) => `${p.path} (${p.name}@${p.version}) wants node ${p.node}, the project supports ${projectRange}`);
}

describe('installed packages run on the Node versions package.json promises', () => {
  const project = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    engines: { node: string };
  };

  it('the check catches a package that needs a newer Node than the project supports', () => {
    const cookie = { path: 'node_modules/cookie', name: 'cookie', version: '2.0.2', node: '>=22' };
    const fine = { path: 'node_modules/vite', name: 'vite', version: '8', node: '^20.19.0 || >=22.12.0' };
    expect(engineViolations('>=20.19', [cookie, fine])).toEqual([
      'node_modules/cookie (cookie@2.0.2) wants node >=22, the project supports >=20.19',
    ]);
  });

  it('no installed package excludes the oldest supported Node', () => {
    const packages = installedPackages(ROOT);
    expect(packages.length).toBeGreaterThan(100);
    expect(engineViolations(project.engines.node, packages)).toEqual([]);
  });
});
