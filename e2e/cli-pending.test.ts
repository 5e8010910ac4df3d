import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { findTestEngine } from '../src/executors/docker/testing/test-engine.js';
import { runCli, workdir } from './cli-helpers.js';

const found = await findTestEngine();
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe.skipIf(!found.available)('slipway run: the pending phase of a step (real engine)', () => {
  it('says it pulls the image, then ends the step error image_pull when the pull fails', async () => {
    // Nothing listens on this registry: the pull fails at once, no network needed.
    const image = 'localhost:1/slipway-no-such-image:1';
    const dir = await workdir({
      // The step's own image: pulled in its pending phase (a pipeline image is pulled with the build).
      '.slipway.yml': `steps:\n  - name: build\n    image: ${image}\n    commands: ["true"]\n`,
    });
    dirs.push(dir);
    const result = await runCli(['run', '--executor', 'docker', '--no-color'], { cwd: dir });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toContain(`--- default/build pulling image "${image}"`);
    expect(result.stdout).toMatch(/default\/build error: .*localhost:1\/slipway-no-such-image/);
  });
});
