import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink, eventually, within } from '../executor.case.js';
import { followStep, runStep } from '../lifecycle.js';
import type { BuildHandle, BuildSpec, OutputSink, StepRef, StepSpec } from '../types.js';
import { ExecutorError } from '../types.js';
import type { DockerClient, Labels } from './client.js';
import { createDockerClient } from './client.js';
import { FrameDemuxer } from './demux.js';
import { DockerExecutor, type DockerExecutorOptions, LABELS } from './docker-executor.js';
import {
  EngineUnavailableError,
  discoverEngine,
  doctorReport,
  formatDoctorReport,
  parseEngineAddress,
} from './engine.js';
import { enginePlan, findTestEngine } from './testing/test-engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('docker executor', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available ? found : undefined;
const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
let seq = 0;

describe.skipIf(!live)('DockerExecutor', () => {
  let client: DockerClient;
  let image: string;
  const created: DockerExecutor[] = [];
  const make = (options: Partial<DockerExecutorOptions> = {}): DockerExecutor => {
    const ex = new DockerExecutor({ client, stopGraceMs: 500, ...options });
    created.push(ex);
    return ex;
  };
  const build = (extra: Partial<BuildSpec> = {}): BuildSpec => ({
    buildId: `docker-test-${run}-${++seq}`,
    project: 'acme/app',
    branch: 'main',
    image,
    services: [],
    ...extra,
  });
  const step = (commands: string[], extra: Partial<StepSpec> = {}): StepSpec => ({
    key: `test/s${++seq}`,
    stage: 'test',
    step: `s${seq}`,
    commands,
    env: {},
    secrets: {},
    attempt: 1,
    ...extra,
  });
  const never = () => new AbortController().signal;
  const byBuild = async (buildId: string) =>
    client.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABELS.build}=${buildId}`] }) });

  beforeAll(() => {
    client = live!.client;
    image = live!.image;
  });

  afterAll(async () => {
    // Whatever a failed test left behind.
    const ex = make();
    const ours = (await ex.listResources()).filter((r) => r.buildId.startsWith(`docker-test-${run}-`));
    await Promise.all([...new Set(ours.map((r) => r.buildId))].map((id) => ex.removeResources(id)));
  }, 60_000);

  async function withBuild<T>(
    ex: DockerExecutor,
    spec: BuildSpec,
    fn: (h: BuildHandle) => Promise<T>,
  ): Promise<T> {
    const h = await ex.prepare(spec);
    try {
      return await fn(h);
    } finally {
      await ex.destroy(h);
    }
  }

  describe('images', () => {
    it('ends a step with an error status and the engine message when the image cannot be pulled', async () => {
      const ex = make();
      await withBuild(ex, build(), async (h) => {
        const sink = new RecordingSink();
        const exit = await within(
          30_000,
          'runStep with a missing image',
          runStep(ex, h, step(['echo never'], { image: 'slipway.invalid/no/such-image:1' }), sink, never()),
        );
        expect(exit?.kind).toBe('error');
        if (exit?.kind !== 'error') return;
        expect(exit.message).toContain('slipway.invalid/no/such-image:1');
        expect(exit.message).toMatch(/cannot pull image/);
        expect(exit.code).toBe('image_pull');
        expect(sink.lines).toEqual([]);
      });
    });

    it('does not pull with policy "never" and says so', async () => {
      const ex = make({ pull: 'never' });
      await withBuild(ex, build(), async (h) => {
        const exit = await within(
          30_000,
          'runStep',
          runStep(
            ex,
            h,
            step(['true'], { image: 'localhost/slipway-no-such-image:1' }),
            new RecordingSink(),
            never(),
          ),
        );
        expect(exit).toEqual({
          kind: 'error',
          code: 'image_pull',
          message:
            'image "localhost/slipway-no-such-image:1" is not present on the engine and the pull policy is "never"',
        });
        // A present image runs under "never".
        expect((await runStep(ex, h, step(['true']), new RecordingSink(), never()))?.kind).toBe('exited');
      });
    });

    it('pulls even a present image with policy "always" (and reports the failure here: no registry)', async () => {
      const ex = make({ pull: 'always' });
      await withBuild(ex, build(), async (h) => {
        const exit = await within(
          30_000,
          'runStep',
          runStep(ex, h, step(['true']), new RecordingSink(), never()),
        );
        // No registry is reachable from these machines; where one is, the pull succeeds.
        expect(['error', 'exited']).toContain(exit?.kind);
      });
    });

    it('errors clearly when neither the step nor the pipeline has an image', async () => {
      const ex = make();
      await withBuild(ex, build({ image: undefined }), async (h) => {
        const exit = await runStep(
          ex,
          h,
          step(['true'], { key: 'test/noimg' }),
          new RecordingSink(),
          never(),
        );
        expect(exit).toEqual({
          kind: 'error',
          code: 'image_pull',
          message: 'step "test/noimg" has no image: set image on the step or the pipeline',
        });
      });
    });

    it('fails prepare with image_unavailable when a service image is missing', async () => {
      const ex = make({ pull: 'never' });
      const spec = build({
        services: [{ name: 'db', image: 'localhost/slipway-no-such-image:2', env: {}, secrets: [] }],
      });
      const err = await within(30_000, 'prepare', ex.prepare(spec)).catch((e: unknown) => e);
      await ex.destroy({ buildId: spec.buildId, workspace: ex.workspacePath(spec.buildId) });
      expect(err).toBeInstanceOf(ExecutorError);
      expect((err as ExecutorError).code).toBe('image_unavailable');
      expect((err as ExecutorError).message).toContain('service "db"');
      expect(await byBuild(spec.buildId)).toEqual([]);
    });

    it('seeds the workspace with the first step image when the pipeline has none', async () => {
      const src = await mkdtemp(join(tmpdir(), 'slipway-docker-src-'));
      try {
        await writeFile(join(src, 'a.txt'), 'seeded\n');
        const ex = make();
        await withBuild(ex, build({ image: undefined, sourceDir: src }), async (h) => {
          const [a, b] = await Promise.all([
            runStep(ex, h, step(['cat a.txt'], { image }), new RecordingSink(), never()),
            runStep(ex, h, step(['cat a.txt'], { image }), new RecordingSink(), never()),
          ]);
          expect(a).toEqual({ kind: 'exited', exitCode: 0 });
          expect(b).toEqual({ kind: 'exited', exitCode: 0 });
        });
      } finally {
        await rm(src, { recursive: true, force: true });
      }
    });
  });

  describe('services', () => {
    const httpd = (name: string, port: number, body: string) => ({
      name,
      env: { BODY: body },
      secrets: [],
      commands: [
        'mkdir -p /srv',
        'printf "%s\\n" "$BODY" > /srv/index.html',
        `echo "${name} listening on ${port}"`,
        `exec httpd -f -p ${port} -h /srv`,
      ],
      waitFor: port,
    });

    it('starts services before the steps, reachable on localhost, with their logs in serviceSink', async () => {
      const ex = make();
      const serviceLines: string[] = [];
      const spec = build({
        services: [
          httpd('web', 8080, 'hello from web'),
          // A raw TCP service with nc, started after a delay: wait_for must hold the steps.
          {
            name: 'echo',
            env: {},
            secrets: [],
            commands: ['sleep 1', 'echo "echo up"', 'while true; do echo pong | nc -l -p 9000; done'],
            waitFor: 9000,
          },
        ],
        serviceSink: (service): OutputSink => ({
          line: (_s, text) => serviceLines.push(`${service}: ${text}`),
        }),
      });
      await withBuild(ex, spec, async (h) => {
        const sink = new RecordingSink();
        const exit = await runStep(
          ex,
          h,
          step(['wget -q -O - http://localhost:8080/index.html', 'nc 127.0.0.1 9000 </dev/null']),
          sink,
          never(),
        );
        expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        expect(sink.out()).toEqual(['hello from web', 'pong']);
        // Every step shares the namespace, not only the first.
        const again = new RecordingSink();
        await runStep(ex, h, step(['wget -q -O - http://127.0.0.1:8080/index.html']), again, never());
        expect(again.out()).toEqual(['hello from web']);
        await eventually(10_000, 'service logs', () => serviceLines.includes('web: web listening on 8080'));
        expect(serviceLines).toContain('echo: echo up');
      });
      expect(await byBuild(spec.buildId)).toEqual([]);
    });

    it('fails prepare with a clear error when a service never opens its wait_for port', async () => {
      const ex = make({ serviceTimeoutMs: 1500 });
      const spec = build({
        services: [{ name: 'slow', env: {}, secrets: [], commands: ['sleep 300'], waitFor: 5432 }],
      });
      const err = await within(30_000, 'prepare', ex.prepare(spec)).catch((e: unknown) => e);
      await ex.destroy({ buildId: spec.buildId, workspace: ex.workspacePath(spec.buildId) });
      expect(err).toBeInstanceOf(ExecutorError);
      expect((err as ExecutorError).code).toBe('service');
      expect((err as ExecutorError).message).toBe('service "slow" did not open port 5432 within 2 s');
      expect(await byBuild(spec.buildId)).toEqual([]);
    });

    it('fails prepare at once when a service exits before its port opens', async () => {
      const ex = make({ serviceTimeoutMs: 60_000 });
      const spec = build({
        services: [
          { name: 'broken', env: {}, secrets: [], commands: ['echo boom >&2', 'exit 3'], waitFor: 80 },
        ],
      });
      const err = await within(30_000, 'prepare', ex.prepare(spec)).catch((e: unknown) => e);
      await ex.destroy({ buildId: spec.buildId, workspace: ex.workspacePath(spec.buildId) });
      expect((err as ExecutorError).code).toBe('service');
      expect((err as ExecutorError).message).toBe('service "broken" exited (code 3) before port 80 was open');
    });
  });

  describe('labels and cleanup', () => {
    it('labels every container and the volume, and destroy removes them all', async () => {
      const ex = make();
      const spec = build({
        services: [{ name: 'idle', env: {}, secrets: [], commands: ['sleep 300'] }],
      });
      const h = await ex.prepare(spec);
      let seen: Array<{ Labels?: Labels | null }> = [];
      try {
        const sink = new RecordingSink();
        const ctl = new AbortController();
        const running = runStep(
          ex,
          h,
          step(['echo up', 'sleep 300'], { key: 'test/labelled' }),
          sink,
          ctl.signal,
        );
        await eventually(30_000, 'step started', () => sink.has('up'));
        seen = await byBuild(spec.buildId);
        ctl.abort();
        expect((await within(30_000, 'abort', running))?.kind).toBe('aborted');
      } finally {
        await ex.destroy(h);
      }
      const roles = seen.map((c) => c.Labels?.[LABELS.role]).sort();
      expect(roles).toEqual(['infra', 'service', 'step']);
      for (const c of seen) {
        expect(c.Labels).toMatchObject({
          [LABELS.managed]: 'true',
          [LABELS.build]: spec.buildId,
          [LABELS.project]: 'acme/app',
          [LABELS.branch]: 'main',
        });
        expect(c.Labels).toHaveProperty([LABELS.step]);
      }
      expect(seen.find((c) => c.Labels?.[LABELS.role] === 'step')?.Labels?.[LABELS.step]).toBe(
        'test/labelled',
      );
      expect(seen.find((c) => c.Labels?.[LABELS.role] === 'service')?.Labels?.[LABELS.service]).toBe('idle');

      expect(await byBuild(spec.buildId)).toEqual([]);
      const volumes = await client.listVolumes({
        filters: JSON.stringify({ label: [`${LABELS.build}=${spec.buildId}`] }),
      });
      expect(volumes.Volumes ?? []).toEqual([]);
      expect((await ex.listResources()).filter((r) => r.buildId === spec.buildId)).toEqual([]);
    });

    it('lists a build by label (also from another executor instance) and removeResources clears it', async () => {
      const ex = make();
      const spec = build();
      const h = await ex.prepare(spec);
      // A step with `~/` cache paths makes the caches volume; another process finds it.
      await runStep(ex, h, step(['true'], { cacheHome: { save: [] } }), new RecordingSink(), never());
      const other = make();
      const resumed = await other.resumeBuild(spec);
      const again = step(['test -d /slipway/caches'], { cacheHome: { save: [] } });
      expect(await runStep(other, resumed, again, new RecordingSink(), never())).toEqual({
        kind: 'exited',
        exitCode: 0,
      });
      const mine = (await other.listResources()).filter((r) => r.buildId === spec.buildId);
      const volumes = mine.filter((r) => r.kind === 'volume').map((r) => r.id.replace(/^.*-/, ''));
      expect(volumes.sort()).toEqual(['caches', 'workspace']);
      expect(mine.every((r) => r.project === 'acme/app')).toBe(true);
      await other.removeResources(spec.buildId);
      expect((await other.listResources()).filter((r) => r.buildId === spec.buildId)).toEqual([]);
      await ex.destroy(h);
    });
  });

  describe('cancel', () => {
    it('stops a step that ignores SIGTERM: grace, then SIGKILL (exit 137)', async () => {
      const ex = make({ stopGraceMs: 300 });
      await withBuild(ex, build(), async (h) => {
        const sink = new RecordingSink();
        const ctl = new AbortController();
        const running = runStep(
          ex,
          h,
          step(["trap 'echo got TERM' TERM", 'echo armed', 'while true; do sleep 1; done']),
          sink,
          ctl.signal,
        );
        await eventually(30_000, 'step armed', () => sink.has('armed'));
        ctl.abort();
        const exit = await within(30_000, 'aborted step', running);
        expect(exit).toEqual({ kind: 'aborted', exitCode: 137 });
      });
    });

    it('stops a plain step with SIGTERM (it reaches the shell through the init)', async () => {
      const ex = make({ stopGraceMs: 60_000 });
      await withBuild(ex, build(), async (h) => {
        const sink = new RecordingSink();
        const ctl = new AbortController();
        const running = runStep(ex, h, step(['echo armed', 'sleep 300']), sink, ctl.signal);
        await eventually(30_000, 'step armed', () => sink.has('armed'));
        ctl.abort();
        // Within far less than the 60 s grace: SIGTERM alone ended it.
        const exit = await within(30_000, 'aborted step', running);
        expect(exit).toEqual({ kind: 'aborted', exitCode: 143 });
      });
    });
  });

  describe('lifecycle: a step outlives the process that started it', () => {
    /** Prints 1..n, `pause` seconds apart. */
    const counting = (n: number, pause: number) =>
      `i=1; while [ $i -le ${n} ]; do echo $i; [ $i -lt ${n} ] && sleep ${pause}; i=$((i+1)); done`;
    const numbers = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
    const startRef = async (ex: DockerExecutor, h: BuildHandle, s: StepSpec): Promise<StepRef> => {
      const start = await within(60_000, 'startStep', ex.startStep(h, s, never()));
      if (!('ref' in start)) throw new Error(`the step did not start: ${JSON.stringify(start.exit)}`);
      // As a successor reads it back from the database.
      return JSON.parse(JSON.stringify(start.ref)) as StepRef;
    };
    const exitedOnEngine = (ref: StepRef) => async () =>
      !(await client.getContainer(ref.id).inspect()).State.Running;

    it('tails from a position: exactly the lines after it, again and again the same', async () => {
      const ex = make();
      await withBuild(ex, build(), async (h) => {
        const s = step([counting(6, 0.3)]);
        const ref = await startRef(ex, h, s);
        // A first reader that stops after three lines (a server that went away).
        const first = new RecordingSink();
        const stopFirst = new AbortController();
        const firstTail = ex.tailStep(h, ref, { stdout: 0, stderr: 0 }, first, stopFirst.signal);
        await eventually(60_000, 'three lines', () => first.out().length >= 3);
        stopFirst.abort();
        await within(30_000, 'aborted tail', firstTail);
        const k = first.out().length;
        expect(first.out()).toEqual(numbers(1, k));
        const rest = new RecordingSink();
        await within(60_000, 'tail to the end', ex.tailStep(h, ref, { stdout: k, stderr: 0 }, rest, never()));
        expect(rest.out()).toEqual(numbers(k + 1, 6));
        // Idempotent: the same position gives the same lines.
        const again = new RecordingSink();
        await ex.tailStep(h, ref, { stdout: k, stderr: 0 }, again, never());
        expect(again.lines).toEqual(rest.lines);
        expect(await ex.waitStep(h, ref, never())).toEqual({ kind: 'exited', exitCode: 0 });
        // Not auto-removed: the container is there until released.
        expect((await client.getContainer(ref.id).inspect()).State.ExitCode).toBe(0);
        await ex.releaseStep(h, ref);
        await ex.releaseStep(h, ref);
        expect(await byBuild(h.buildId)).toEqual([]);
      });
    }, 180_000);

    it('a second executor (a restarted server) resumes the build, finds the step and follows it to its end', async () => {
      const first = make();
      const spec = build({ services: [{ name: 'idle', env: {}, secrets: [], commands: ['sleep 300'] }] });
      const h1 = await first.prepare(spec);
      try {
        // It ends only once told to (a file in the build's workspace), so the first follow is
        // detached before the step ends however busy the machine: a timed step could end first.
        const s = step(
          [
            'echo 1',
            'echo 2',
            'while [ ! -f /workspace/go ]; do sleep 0.1; done',
            'echo 3',
            'echo 4',
            'echo 5',
          ],
          {
            key: 'test/resumed',
          },
        );
        const ref = await startRef(first, h1, s);
        const before = new RecordingSink();
        const detach = new AbortController();
        const following = followStep(
          first,
          h1,
          ref,
          { stdout: 0, stderr: 0 },
          before,
          never(),
          detach.signal,
        );
        await eventually(60_000, 'two lines', () => before.out().length >= 2);
        detach.abort(); // the server stops: the step goes on
        expect(await within(30_000, 'detached follow', following)).toBeUndefined();

        const second = make();
        const h2 = await second.resumeBuild(spec);
        const found = await second.findStep(h2, 'test/resumed', 1);
        expect(found).toMatchObject({ executor: 'docker', id: ref.id, buildId: spec.buildId, attempt: 1 });
        // startStep is idempotent per key and attempt: no second container.
        const again = await second.startStep(h2, s, never());
        expect('ref' in again && again.ref.id).toBe(ref.id);
        expect(
          await runStep(second, h2, step(['touch /workspace/go']), new RecordingSink(), never()),
        ).toEqual({
          kind: 'exited',
          exitCode: 0,
        });
        const after = new RecordingSink();
        const exit = await within(
          60_000,
          'resumed follow',
          followStep(second, h2, found!, before.position(), after, never()),
        );
        expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        expect([...before.out(), ...after.out()]).toEqual(numbers(1, 5));
        // Later steps of the resumed build join the same network namespace and workspace.
        const next = new RecordingSink();
        expect(await runStep(second, h2, step(['test -d /workspace', 'echo ok']), next, never())).toEqual({
          kind: 'exited',
          exitCode: 0,
        });
        expect(next.out()).toEqual(['ok']);
        await second.destroy(h2);
      } finally {
        await first.destroy(h1);
      }
      expect(await byBuild(spec.buildId)).toEqual([]);
    }, 180_000);

    it('reads back a step that failed while nobody watched: its exit code and all its output', async () => {
      const first = make();
      const spec = build();
      const h1 = await first.prepare(spec);
      try {
        const ref = await startRef(first, h1, step(['echo out', 'echo err >&2', 'echo more', 'exit 3']));
        await eventually(60_000, 'the step ended on the engine', exitedOnEngine(ref));
        const second = make();
        const h2 = await second.resumeBuild(spec);
        expect(await second.waitStep(h2, ref, never())).toEqual({ kind: 'exited', exitCode: 3 });
        const sink = new RecordingSink();
        await within(60_000, 'tail', second.tailStep(h2, ref, { stdout: 0, stderr: 0 }, sink, never()));
        expect(sink.out()).toEqual(['out', 'more']);
        expect(sink.err()).toEqual(['err']);
      } finally {
        await first.destroy(h1);
      }
    }, 180_000);

    it('never adopts a container of another build or installation, nor a ref that is not a container', async () => {
      const ex = make();
      // Same build number on two installations: only the installation part differs.
      const mine = build({ buildId: `s1-${run}-${++seq}` });
      const theirs = build({ buildId: `s2-${mine.buildId.slice(3)}` });
      const hm = await ex.prepare(mine);
      const ht = await ex.prepare(theirs);
      try {
        const s = step(['echo secret-of-s2']);
        const their = await startRef(ex, ht, s);
        await eventually(60_000, 'their step ended', exitedOnEngine(their));
        const forged: StepRef[] = [
          { ...their, buildId: mine.buildId },
          { ...their, buildId: mine.buildId, attempt: 2 },
          { ...their, buildId: mine.buildId, id: '../../images/json' },
          { ...their, buildId: mine.buildId, id: 'no-such-container-anywhere' },
        ];
        for (const ref of forged) {
          const sink = new RecordingSink();
          await ex.tailStep(hm, ref, { stdout: 0, stderr: 0 }, sink, never());
          expect(sink.lines).toEqual([]);
          const exit = await ex.waitStep(hm, ref, never());
          expect(exit).toMatchObject({ kind: 'error', code: 'gone' });
          await ex.stopStep(hm, ref);
          await ex.releaseStep(hm, ref);
        }
        // A ref of another build presented with its own handle under another build's key.
        expect(await ex.waitStep(ht, { ...their, key: 'other/step' }, never())).toMatchObject({
          code: 'gone',
        });
        // And nothing of theirs was touched.
        expect(await ex.waitStep(ht, their, never())).toEqual({ kind: 'exited', exitCode: 0 });
        expect(await ex.findStep(hm, s.key, 1)).toBeUndefined();
      } finally {
        await ex.destroy(hm);
        await ex.destroy(ht);
      }
    }, 180_000);

    it('resumeBuild rejects gone when the workspace volume is gone', async () => {
      const ex = make();
      const spec = build();
      const h = await ex.prepare(spec);
      await ex.destroy(h);
      const err = await make()
        .resumeBuild(spec)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExecutorError);
      expect((err as ExecutorError).code).toBe('gone');
      expect((err as ExecutorError).message).toContain(spec.buildId);
    });

    it('gives secrets to the step environment, over plain env of the same name', async () => {
      const ex = make();
      await withBuild(ex, build(), async (h) => {
        const sink = new RecordingSink();
        const s = step(['echo "$PLAIN $TOKEN"'], {
          env: { PLAIN: 'plain', TOKEN: 'from-env' },
          secrets: { TOKEN: 'from-secret' },
        });
        expect(await runStep(ex, h, s, sink, never())).toEqual({ kind: 'exited', exitCode: 0 });
        expect(sink.out()).toEqual(['plain from-secret']);
      });
    });
  });

  describe('output volume', () => {
    it('streams a large output without holding it in memory', async () => {
      const ex = make();
      await withBuild(ex, build(), async (h) => {
        let lines = 0;
        let bytes = 0;
        let peak = 0;
        const base = process.memoryUsage().rss;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss - base)), 50);
        try {
          // 256 MiB of 1 KiB lines.
          const exit = await within(
            240_000,
            'large output',
            runStep(
              ex,
              h,
              step(['yes "$(printf \'%01023d\' 0)" | head -n 262144']),
              { line: (_s, text) => ((lines += 1), (bytes += text.length + 1)) },
              never(),
            ),
          );
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
        } finally {
          clearInterval(sampler);
        }
        expect(lines).toBe(262_144);
        expect(bytes).toBe(262_144 * 1024);
        // Buffering it would cost at least its size (more as JS strings).
        expect(peak).toBeLessThan(128 * 1024 * 1024);
      });
    }, 300_000);
  });

  describe('engine faults', () => {
    it('ends a running step with an error when the engine dies, not a hang', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'slipway-engine-'));
      const socket = join(dir, 'podman.sock');
      const service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
        stdio: 'ignore',
      });
      const serviceExited = new Promise((resolve) => service.on('exit', resolve));
      const spawnFailed = await new Promise<boolean>((resolve) => {
        service.on('error', () => resolve(true));
        setTimeout(() => resolve(false), 100);
      });
      if (spawnFailed) {
        console.warn('podman CLI not found: skipping the engine-death test');
        return;
      }
      try {
        const doomed = createDockerClient(parseEngineAddress(`unix://${socket}`));
        await eventually(20_000, 'private engine answers', () =>
          doomed.ping().then(
            () => true,
            () => false,
          ),
        );
        const ex = make({ client: doomed, engineCheckMs: 500 });
        const spec = build();
        const h = await ex.prepare(spec);
        const sink = new RecordingSink();
        const running = runStep(ex, h, step(['echo up', 'sleep 300']), sink, never());
        await eventually(30_000, 'step started', () => sink.has('up'));
        service.kill('SIGKILL');
        const exit = await within(30_000, 'runStep after engine death', running);
        expect(exit?.kind).toBe('error');
        if (exit?.kind === 'error') {
          expect(exit.code).toBe('engine_unavailable');
          expect(exit.message).toMatch(/container engine/);
        }
        await expect(ex.destroy(h)).rejects.toThrow();
        // The containers live on (conmon); the main engine sees and removes them by label.
        await make().removeResources(spec.buildId);
        expect(await byBuild(spec.buildId)).toEqual([]);
      } finally {
        service.kill('SIGKILL');
        await serviceExited;
        await rm(dir, { recursive: true, force: true });
      }
    }, 120_000);
  });
});

describe('engine discovery', () => {
  it('lists every address tried and how to start an engine when none answers', async () => {
    const err = await discoverEngine({
      env: { DOCKER_HOST: 'unix:///nonexistent/slipway/docker.sock' },
      defaultSockets: ['/nonexistent/slipway/podman.sock', '/dev/null'],
      pingTimeoutMs: 500,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    const message = (err as EngineUnavailableError).message;
    expect(message).toContain('unix:///nonexistent/slipway/docker.sock (DOCKER_HOST): no socket there');
    expect(message).toContain('unix:///nonexistent/slipway/podman.sock (default): no socket there');
    expect(message).toContain('unix:///dev/null (default): exists but is not a socket');
    expect(message).toContain('sudo systemctl start docker');
    expect(message).toContain('podman system service --time=0 unix:///run/podman/podman.sock');
    expect(message).toContain('scripts/setup-podman.sh');
    expect((err as EngineUnavailableError).code).toBe('engine_unavailable');
  });

  it('tries only the --engine address when one is given', async () => {
    const err = await discoverEngine({ engine: '/nonexistent/bogus.sock', env: {} }).catch((e: unknown) => e);
    expect((err as EngineUnavailableError).attempts).toEqual([
      { address: 'unix:///nonexistent/bogus.sock', source: 'engine option', reason: 'no socket there' },
    ]);
  });

  it('reports a refused connection on a stale socket (engine died without cleaning up)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-stale-'));
    const path = join(dir, 'stale.sock');
    try {
      const listener = spawn(
        process.execPath,
        ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ok'))`],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise((resolve) => listener.stdout.once('data', resolve));
      listener.kill('SIGKILL');
      await new Promise((resolve) => listener.on('exit', resolve));
      const err = await discoverEngine({ engine: path, env: {} }).catch((e: unknown) => e);
      expect((err as EngineUnavailableError).attempts).toEqual([
        {
          address: `unix://${path}`,
          source: 'engine option',
          reason: 'connection refused (nothing listening; a stale socket?)',
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses engine addresses', () => {
    expect(parseEngineAddress('unix:///run/podman/podman.sock')).toEqual({
      kind: 'socket',
      address: 'unix:///run/podman/podman.sock',
      socketPath: '/run/podman/podman.sock',
    });
    expect(parseEngineAddress('/var/run/docker.sock')).toMatchObject({
      address: 'unix:///var/run/docker.sock',
    });
    expect(parseEngineAddress('tcp://10.0.0.5:2375', {})).toMatchObject({
      kind: 'tcp',
      protocol: 'http',
      host: '10.0.0.5',
      port: 2375,
    });
    expect(parseEngineAddress('tcp://docker.example', { DOCKER_TLS_VERIFY: '1' })).toMatchObject({
      protocol: 'https',
      port: 2376,
    });
    expect(() => parseEngineAddress('ftp://x')).toThrow(/invalid engine address "ftp:\/\/x"/);
    expect(() => parseEngineAddress('unix://relative.sock')).toThrow(/must be absolute/);
  });

  it('doctor says which executors are usable and why not', async () => {
    const report = await doctorReport({ engine: 'unix:///nonexistent/slipway.sock', env: {} });
    expect(report.executors.map((e) => [e.name, e.usable])).toEqual([
      ['local', true],
      ['docker', false],
    ]);
    expect(report.executors[1]?.detail).toContain('unix:///nonexistent/slipway.sock');
    expect(formatDoctorReport(report)).toMatch(/^ok {3}local/);
  });

  it.skipIf(!live)('doctor names the engine and its version when one answers', async () => {
    const report = await doctorReport({ engine: live!.engine.address });
    expect(report.executors[1]).toMatchObject({ name: 'docker', usable: true });
    expect(report.executors[1]?.detail).toContain(
      `${live!.engine.product} ${live!.engine.version} at ${live!.engine.address}`,
    );
  });
});

describe('FrameDemuxer', () => {
  const frame = (type: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it('splits frames cut at every possible byte boundary', () => {
    const all = Buffer.concat([
      frame(1, 'out one\n'),
      frame(2, 'err\n'),
      frame(1, 'out two\n'),
      frame(1, ''),
    ]);
    for (let cut = 1; cut < all.length; cut++) {
      const got: Record<string, string> = { stdout: '', stderr: '' };
      const demux = new FrameDemuxer((stream, bytes) => (got[stream] += bytes.toString()));
      demux.write(all.subarray(0, cut));
      demux.write(all.subarray(cut));
      expect(got).toEqual({ stdout: 'out one\nout two\n', stderr: 'err\n' });
    }
  });
});
