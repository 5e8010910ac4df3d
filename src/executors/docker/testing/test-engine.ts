/**
 * Test set-up for the docker executor: finds the engine and the test image. Tests that need an
 * engine skip, with the reason, only when no engine answers; under `CI=true` (or
 * `SLIPWAY_REQUIRE_ENGINE=1`) they fail instead, since CI runs scripts/setup-podman.sh first.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DockerClient } from '../client.js';
import type { EngineInfo } from '../engine.js';
import { clientFor, discoverEngine } from '../engine.js';

/** The image the tests run (built locally by scripts/build-test-images.sh; no registry here). */
export const TEST_IMAGE = process.env.SLIPWAY_TEST_IMAGE ?? 'localhost/busybox:latest';

export type TestEngine =
  | { available: true; engine: EngineInfo; client: DockerClient; image: string }
  | { available: false; reason: string };

/** Whether a missing engine must fail the run rather than skip it. */
export function engineRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1' || env.SLIPWAY_REQUIRE_ENGINE === '1';
}

/**
 * Finds an engine (same discovery as `slipway run`; `SLIPWAY_TEST_ENGINE` overrides) and makes
 * sure the test image exists, building it with scripts/build-test-images.sh if Podman's CLI is
 * here. An engine without the image is an error, not a skip: that is a broken set-up.
 */
export async function findTestEngine(): Promise<TestEngine> {
  let engine: EngineInfo;
  try {
    engine = await discoverEngine(
      process.env.SLIPWAY_TEST_ENGINE ? { engine: process.env.SLIPWAY_TEST_ENGINE } : {},
    );
  } catch (error) {
    return { available: false, reason: error instanceof Error ? error.message : String(error) };
  }
  const client = clientFor(engine);
  if (!(await hasImage(client, TEST_IMAGE))) {
    const script = fileURLToPath(new URL('../../../../scripts/build-test-images.sh', import.meta.url));
    try {
      await promisify(execFile)('bash', [script], {
        env: { ...process.env, SLIPWAY_TEST_IMAGE: TEST_IMAGE },
      });
    } catch (error) {
      throw new Error(
        `the engine at ${engine.address} has no ${TEST_IMAGE} and building it failed ` +
          `(run scripts/setup-podman.sh): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (!(await hasImage(client, TEST_IMAGE))) {
      throw new Error(
        `${TEST_IMAGE} is still missing on ${engine.address} after scripts/build-test-images.sh`,
      );
    }
  }
  return { available: true, engine, client, image: TEST_IMAGE };
}

/**
 * What a test file does about the engine: `run`, `skip` (with the reason, printed), or `fail`
 * (no engine although one is required: the file registers one failing test with the reason).
 */
export function enginePlan(
  found: TestEngine,
  env: NodeJS.ProcessEnv = process.env,
): { action: 'run' } | { action: 'skip' | 'fail'; reason: string } {
  if (found.available) return { action: 'run' };
  if (engineRequired(env)) {
    return {
      action: 'fail',
      reason: `CI requires a container engine (run scripts/setup-podman.sh): ${found.reason}`,
    };
  }
  return {
    action: 'skip',
    reason: `no container engine answers; docker executor tests skipped.\n${found.reason}`,
  };
}

async function hasImage(client: DockerClient, image: string): Promise<boolean> {
  try {
    await client.getImage(image).inspect();
    return true;
  } catch {
    return false;
  }
}
