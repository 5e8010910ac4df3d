import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import { recordReusedSteps } from '../../store/rerun.js';
import { createBuildRecords } from '../../store/records.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { seedReusedArtifacts } from './seed.js';
import { artifactKey, recordArtifact } from './store.js';

/**
 * Reused artifacts into a checkout (a real filesystem blob store and SQLite): written at their
 * paths, and never through a link the repository holds, nor over a directory.
 */
describe('seedReusedArtifacts', () => {
  let t: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dir = await mkdtemp(join(tmpdir(), 'slipway-seed-'));
  });
  afterAll(async () => {
    await t?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes reused artifacts into the checkout; links and directories in the way are skipped with a line', async () => {
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const p = await makeProject(t.db);
    const first = await makeBuild(t.db, p.id);
    const paths = ['out/app.bin', 'linked/evil.txt', 'link-file', 'adir', 'new/deep/file.txt'];
    for (const path of paths) {
      await blobs.put(artifactKey(first.id, path), `bytes of ${path}\n`);
      await recordArtifact(t.db, {
        buildId: first.id,
        step: 'build/compile',
        path,
        size: 1,
        sha256: '00'.repeat(32),
        createdAt: 1,
      });
    }
    const second = await makeBuild(t.db, p.id, { rerunOf: first.id, rerunFailed: true });
    const [stage] = await createBuildRecords(t.db, second.id, [{ name: 'build', steps: ['compile'] }]);
    await recordReusedSteps(t.db, second.id, first.id, [
      {
        stepId: stage!.steps[0]!.id,
        key: 'build/compile',
        from: { buildId: first.id, number: first.number },
        exitCode: 0,
        attempts: 1,
        durationMs: 1,
      },
    ]);

    // The checkout: a directory link and a file link pointing outside, and a directory.
    const checkout = join(dir, 'checkout');
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await mkdir(join(checkout, 'adir'), { recursive: true });
    await writeFile(join(outside, 'target'), 'untouched\n');
    await symlink(outside, join(checkout, 'linked'));
    await symlink(join(outside, 'target'), join(checkout, 'link-file'));

    const lines: string[] = [];
    const written = await seedReusedArtifacts({ db: t.db, blobs }, second.id, checkout, (l) => lines.push(l));
    expect(written).toBe(2);
    expect(await readFile(join(checkout, 'out/app.bin'), 'utf8')).toBe('bytes of out/app.bin\n');
    expect(await readFile(join(checkout, 'new/deep/file.txt'), 'utf8')).toBe('bytes of new/deep/file.txt\n');
    expect(await readdir(outside)).toEqual(['target']);
    expect(await readFile(join(outside, 'target'), 'utf8')).toBe('untouched\n');
    expect(lines.sort()).toEqual([
      'reused artifact adir not put in the workspace: a directory of that name is in the checkout',
      'reused artifact link-file not put in the workspace: it is a symbolic link in the checkout',
      'reused artifact linked/evil.txt not put in the workspace: linked is a symbolic link in the checkout',
    ]);
  });
});
