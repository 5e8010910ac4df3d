import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PING_PATH,
  VERSION_PATH,
  startEngineProxy,
  type EngineProxy,
} from '../src/executors/docker/testing/engine-proxy.js';
import { enginePlan, findTestEngine } from '../src/executors/docker/testing/test-engine.js';
import { runCli, workdir } from './cli-helpers.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('slipway doctor on a real engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available && found.engine.endpoint.kind === 'socket' ? found : undefined;
const upstream = live?.engine.endpoint.kind === 'socket' ? live.engine.endpoint.socketPath : '';

/** An engine address where nothing is, so Podman on this machine is not found. */
const NO_ENGINE = '/nonexistent/slipway-test/engine.sock';

describe.skipIf(!live)('slipway doctor on a loaded engine (real engine behind a proxy)', () => {
  let dir: string;
  const proxies: EngineProxy[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-doctor-'));
  });
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reports an engine whose /version takes 2.5 s as usable, with its version', async () => {
    const slow = await startEngineProxy(upstream, (line) =>
      VERSION_PATH.test(line) ? { delayMs: 2_500 } : 'pass',
    );
    proxies.push(slow);
    const result = await runCli(['doctor', '--engine', slow.address], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `ok   docker     ${live!.engine.product} ${live!.engine.version} at ${slow.address} (engine option)`,
    );
    expect(result.stdout).not.toContain('Start a container engine');
    expect(slow.requests.some((l) => VERSION_PATH.test(l))).toBe(true);
  });

  it('--engine-timeout bounds /version: usable, version unknown and why', async () => {
    const mute = await startEngineProxy(upstream, (line) => (VERSION_PATH.test(line) ? 'hang' : 'pass'));
    proxies.push(mute);
    const result = await runCli(['doctor', '--engine', mute.address, '--engine-timeout', '2s'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `ok   docker     engine at ${mute.address} (engine option), version unknown: ` +
        'it answered _ping, but /version: no answer within 2000 ms',
    );
    expect(mute.requests.some((l) => PING_PATH.test(l))).toBe(true);
  });

  it('takes the timeout from SLIPWAY_ENGINE_TIMEOUT (plain digits are milliseconds)', async () => {
    const mute = await startEngineProxy(upstream, (line) => (VERSION_PATH.test(line) ? 'hang' : 'pass'));
    proxies.push(mute);
    const result = await runCli(['doctor', '--engine', mute.address], {
      cwd: dir,
      env: { SLIPWAY_ENGINE_TIMEOUT: '1500' },
    });
    expect(result.stdout).toContain('no answer within 1500 ms');
  });
});

describe('slipway doctor and gc without an engine', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-doctor-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('doctor says precisely why the address is dead', async () => {
    const result = await runCli(['doctor', '--engine', NO_ENGINE], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^no {3}docker {5}no container engine answered\. Tried:$/m);
    expect(result.stdout).toContain(`unix://${NO_ENGINE} (engine option): no socket there`);
  });

  it('doctor says what each executor isolates a build from', async () => {
    const result = await runCli(['doctor', '--engine', NO_ENGINE], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('isolation: none from the host. Steps are host processes of one user');
    expect(result.stdout).toContain('`slipway server --executor local` as its build user');
    expect(result.stdout).toContain('and shares the host network and process list.');
    expect(result.stdout).toContain('isolation: a fresh container per step');
    expect(result.stdout).toContain('isolation: a pod per build in the build namespace');
  });

  it('a bad --engine-timeout or SLIPWAY_ENGINE_TIMEOUT is a usage error naming its source', async () => {
    const byOption = await runCli(['doctor', '--engine-timeout', 'soon'], { cwd: dir });
    expect(byOption.code).toBe(2);
    expect(byOption.stderr).toBe(
      'slipway: --engine-timeout "soon": expected milliseconds (e.g. 30000) or a duration (e.g. 30s, 2m), from 1 ms to 1h\n',
    );
    const byEnv = await runCli(['gc', '--dry-run'], { cwd: dir, env: { SLIPWAY_ENGINE_TIMEOUT: '0' } });
    expect(byEnv.code).toBe(2);
    expect(byEnv.stderr).toContain('slipway: SLIPWAY_ENGINE_TIMEOUT "0": expected milliseconds');
  });

  it('gc says why it skipped the docker executor', async () => {
    const result = await runCli(['gc', '--dry-run', '--engine', NO_ENGINE, '--engine-timeout', '10s'], {
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `docker: skipped, no container engine answered (unix://${NO_ENGINE} (engine option): no socket there)`,
    );
  });
});

describe('slipway run --executor auto without a container engine', () => {
  let markers: string;
  beforeAll(async () => {
    markers = await mkdtemp(join(tmpdir(), 'slipway-run-markers-'));
  });
  afterAll(() => rm(markers, { recursive: true, force: true }));

  const pipeline = (marker: string, image = 'image: busybox\n') =>
    `${image}steps:\n  - name: touch\n    commands: ["touch ${join(markers, marker)}"]\n`;

  it('refuses an image pipeline: exit 1, the reason, no step run', async () => {
    const dir = await workdir({ '.slipway.yml': pipeline('auto') });
    try {
      const report = join(dir, 'report.json');
      const result = await runCli(['run', '--engine', NO_ENGINE, '--report', report], { cwd: dir });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `slipway: the pipeline names image busybox, but no container engine is available ` +
          `(unix://${NO_ENGINE} (engine option): no socket there); it was not run as host processes. ` +
          'To run it on the host on purpose, use `slipway run --executor local`.',
      );
      expect(result.stderr).not.toContain('using the local executor');
      expect(existsSync(join(markers, 'auto'))).toBe(false);
      const written = JSON.parse(await readFile(report, 'utf8')) as {
        status: string;
        reason: { code: string };
        stages: { steps: { status: string }[] }[];
      };
      expect(written.status).toBe('error');
      expect(written.reason.code).toBe('executor');
      expect(written.stages.flatMap((s) => s.steps.map((step) => step.status))).toEqual(['skipped']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs it on the host with --executor local', async () => {
    const dir = await workdir({ '.slipway.yml': pipeline('local') });
    try {
      const result = await runCli(['run', '--engine', NO_ENGINE, '--executor', 'local'], { cwd: dir });
      expect(result.code).toBe(0);
      expect(existsSync(join(markers, 'local'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('still runs a pipeline that names no image on the host', async () => {
    const dir = await workdir({ '.slipway.yml': pipeline('no-image', '') });
    try {
      const result = await runCli(['run', '--engine', NO_ENGINE], { cwd: dir });
      expect(result.code).toBe(0);
      expect(result.stderr).toContain('the pipeline names no image; using the local executor');
      expect(existsSync(join(markers, 'no-image'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
