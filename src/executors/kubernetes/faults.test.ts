/**
 * The kubernetes executor under the faults a cluster throws at a build, end to end through
 * the executor, against the in-test STAND-IN of the Kubernetes API server (no real cluster
 * can run on these machines) whose kubelet runs the pods for real on Podman. Each fault must
 * end in a typed reason within seconds, never a hang, and leave the step's output complete.
 *
 * Steps that must be running when a fault strikes wait on a gate: a file in the workspace
 * that a second step of the same build creates (`openGate`), so nothing depends on timing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink, SHELL_COMMANDS, eventually, within } from '../executor.case.js';
import { enginePlan, findTestEngine } from '../docker/testing/test-engine.js';
import { runStep } from '../lifecycle.js';
import {
  ExecutorError,
  type BuildHandle,
  type BuildSpec,
  type StepExit,
  type StepRef,
  type StepSpec,
} from '../types.js';
import type { ServicePlan } from '../../pipeline/types.js';
import { createKubeApi } from './client/index.js';
import type { KubeApi, Pod } from './kube-api.js';
import { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes-executor.js';
import { buildLabels, podName } from './manifests/index.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const run = promisify(execFile);
const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('kubernetes executor under faults (stand-in API server on Podman)', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(plan.reason);
    });
  });
}

const INSTALLATION = 'faults';
/** A bound against hangs: far above what any case takes on a loaded machine, far below forever. */
const BOUND = 60_000;
const sh = SHELL_COMMANDS;
const never = (): AbortSignal => new AbortController().signal;

describe.skipIf(!found.available)('kubernetes executor under faults (stand-in API server on Podman)', () => {
  const image = found.available ? found.image : '';
  let standIn: StandIn;
  let api: KubeApi;
  let executor: KubernetesExecutor;
  const executors: KubernetesExecutor[] = [];
  let builds = 0;

  const make = (options: Partial<KubernetesExecutorOptions> = {}): KubernetesExecutor => {
    const made = new KubernetesExecutor({
      api,
      installation: INSTALLATION,
      helperImage: image,
      // Not `Never`: a missing image must go through ErrImagePull/ImagePullBackOff and the pull
      // grace, as on a node with a registry (the stand-in's kubelet never pulls; an image is
      // present when Podman has it).
      pull: 'IfNotPresent',
      stopGraceSeconds: 1,
      deleteGraceSeconds: 1,
      pullGraceMs: 1000,
      // Generous: a pod or step that is slow to start on a loaded machine must not fail here.
      pendingTimeoutMs: BOUND,
      // Well above the stand-in's bookmark interval: a healthy watch never trips it.
      watchdogMs: 3000,
      ...options,
    });
    executors.push(made);
    return made;
  };

  const spec = (services: ServicePlan[] = []): BuildSpec => {
    builds += 1;
    return {
      buildId: `faults-${process.pid}-${builds}`,
      project: 'acme/widgets',
      branch: `feature/fault-${builds}`,
      image,
      services,
    };
  };

  const step = (name: string, commands: string[], extra: Partial<StepSpec> = {}): StepSpec => ({
    key: `test/${name}`,
    stage: 'test',
    step: name,
    image,
    commands,
    env: {},
    secrets: {},
    attempt: 1,
    ...extra,
  });

  /** Starts a step; `ref` resolves once it runs, `exit` when it ended (bounded). */
  const start = (
    build: BuildHandle,
    s: StepSpec,
    on: KubernetesExecutor = executor,
  ): {
    sink: RecordingSink;
    pending: string[];
    ref: Promise<StepRef>;
    exit: Promise<StepExit | undefined>;
  } => {
    const sink = new RecordingSink();
    const pending: string[] = [];
    let started: (ref: StepRef) => void = () => undefined;
    const ref = new Promise<StepRef>((resolve) => (started = resolve));
    const exit = within(
      BOUND,
      `step ${s.key}`,
      runStep(on, build, s, sink, never(), {
        pending: (text) => void pending.push(text),
        started: (r) => {
          started(r);
          return Promise.resolve();
        },
      }),
    );
    return { sink, pending, ref, exit };
  };

  /** Creates `file` in the build's workspace from a second step: a gate the first waits on. */
  const openGate = async (build: BuildHandle, file: string): Promise<void> => {
    const gate = start(build, step(`gate-${file}`, [`touch /workspace/${file}`]));
    expect(await gate.exit).toEqual({ kind: 'exited', exitCode: 0 });
  };

  const hasLine = (sink: RecordingSink, text: string): Promise<void> =>
    eventually(BOUND, `the line ${text}`, () => sink.has(text));

  /** Prepares a build, runs `body`, and always removes the build's objects. */
  const withBuild = async (
    body: (build: BuildHandle, pod: string) => Promise<void>,
    services: ServicePlan[] = [],
  ): Promise<void> => {
    const s = spec(services);
    const build = await within(BOUND, 'prepare', executor.prepare(s));
    try {
      await body(build, podName(s.buildId));
    } finally {
      await executor.destroy(build);
    }
  };

  /** The API server's own JSON of an object, as kubectl would get it. */
  const rawGet = async (path: string): Promise<{ status: number; text: string }> => {
    const response = await fetch(`${standIn.url}/api/v1/namespaces/${standIn.namespace}/${path}`, {
      headers: { authorization: 'Bearer stand-in' },
    });
    return { status: response.status, text: await response.text() };
  };

  beforeAll(async () => {
    standIn = await startStandIn({ kubelet: 'podman', bookmarkIntervalMs: 1000 });
    api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
    executor = make();
  });

  afterAll(async () => {
    standIn?.faults.unschedulable(undefined);
    await Promise.all(executors.map((e) => e.close()));
    await standIn?.close();
  });

  it('an image that cannot be pulled fails the step with image_pull after the pull grace, saying what Kubernetes said', async () => {
    const missing = 'localhost/slipway-faults-missing:1';
    await withBuild(async (build) => {
      const s = start(build, step('pull', [sh.echo('never runs')], { image: missing }));
      const exit = await s.exit;
      expect(exit).toMatchObject({ kind: 'error', code: 'image_pull' });
      const message = exit?.kind === 'error' ? exit.message : '';
      expect(message).toContain(missing);
      // The Warning event of the kubelet, as Kubernetes said it.
      expect(message).toContain(`kubernetes: Failed: Failed to pull image "${missing}"`);
      expect(s.pending.some((p) => /waiting: (ErrImagePull|ImagePullBackOff)/.test(p))).toBe(true);
      expect(s.sink.lines).toEqual([]);

      // A name no registry can have is hopeless at once: no grace.
      const invalid = start(build, step('invalid', [sh.echo('never runs')], { image: 'Not/A:Valid:Name' }));
      const invalidExit = await invalid.exit;
      expect(invalidExit).toMatchObject({ kind: 'error', code: 'image_pull' });
      expect(invalidExit?.kind === 'error' ? invalidExit.message : '').toContain('InvalidImageName');
      expect(invalidExit?.kind === 'error' ? invalidExit.message : '').toContain('Not/A:Valid:Name');
    });
  });

  it("a service's image that cannot be pulled fails prepare with image_unavailable naming it", async () => {
    const unpullable = 'localhost/slipway-faults-service:1';
    standIn.faults.unpullable(unpullable);
    const s = spec([{ name: 'db', image: unpullable, env: {}, secrets: [] }]);
    try {
      const error = await within(BOUND, 'prepare', executor.prepare(s)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ExecutorError);
      expect(error).toMatchObject({ code: 'image_unavailable' });
      expect((error as ExecutorError).message).toContain('service db');
      expect((error as ExecutorError).message).toContain(unpullable);
    } finally {
      await executor.removeResources(s.buildId);
    }
  });

  it("an unschedulable pod fails prepare after the pending timeout with the scheduler's message; cleared in time, prepare succeeds", async () => {
    const message = '0/3 nodes are available: 3 Insufficient memory.';
    standIn.faults.unschedulable(message);
    const short = make({ pendingTimeoutMs: 3000 });
    const first = spec();
    try {
      const error = await within(BOUND, 'prepare', short.prepare(first)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ExecutorError);
      expect((error as ExecutorError).message).toContain('could not be scheduled within 3s');
      expect((error as ExecutorError).message).toContain(message);
    } finally {
      await short.removeResources(first.buildId);
    }

    const second = spec();
    const preparing = within(BOUND, 'prepare', executor.prepare(second));
    try {
      // The scheduler said no: the pod is Pending and Unschedulable; then a node frees up.
      await eventually(BOUND, 'the pod reported unschedulable', async () => {
        const pod = await api.getPod(podName(second.buildId));
        return (
          pod?.status?.conditions?.some(
            (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
          ) ?? false
        );
      });
      standIn.faults.unschedulable(undefined);
      const build = await preparing;
      const s = start(build, step('after', [sh.echo('scheduled')]));
      expect(await s.exit).toEqual({ kind: 'exited', exitCode: 0 });
      expect(s.sink.out()).toEqual(['scheduled']);
    } finally {
      standIn.faults.unschedulable(undefined);
      await preparing.catch(() => undefined);
      await executor.removeResources(second.buildId);
    }
  });

  it('a step killed by the OOM killer ends with oom_killed and exit code 137', async () => {
    await withBuild(async (build, pod) => {
      const s = start(build, step('oom', [sh.echo('ready'), sh.hang()]));
      const ref = await s.ref;
      await hasLine(s.sink, 'ready');
      await standIn.faults.oomKill(pod, ref.id.split('/')[1] ?? '');
      expect(await s.exit).toMatchObject({ kind: 'error', code: 'oom_killed', exitCode: 137 });
      expect(s.sink.out()).toEqual(['ready']);
    });
  });

  it('a step whose pod is evicted ends with evicted and the eviction message', async () => {
    await withBuild(async (build, pod) => {
      const s = start(build, step('evicted', [sh.echo('ready'), sh.hang()]));
      await s.ref;
      await hasLine(s.sink, 'ready');
      const why = 'The node was low on resource: memory.';
      await standIn.faults.evict(pod, why);
      const exit = await s.exit;
      expect(exit).toMatchObject({ kind: 'error', code: 'evicted' });
      expect(exit?.kind === 'error' ? exit.message : '').toContain(why);
      expect(s.sink.out()).toEqual(['ready']);
    });
  });

  it('a step whose pod someone else deletes (gracefully, or forced with kubectl) ends with gone', async () => {
    const specs = [spec(), spec()];
    const [graceful, forced] = await within(
      BOUND,
      'prepare',
      Promise.all(specs.map((s) => executor.prepare(s))),
    );
    try {
      const steps = [graceful, forced].map((build) =>
        start(build!, step('deleted', [sh.echo('ready'), sh.hang()])),
      );
      for (const s of steps) await hasLine(s.sink, 'ready');
      // Graceful: the pod is terminating (deletionTimestamp) before it goes.
      await api.deletePod(podName(specs[0]!.buildId), 1);
      // Forced: the pod is gone from the API at once, with no terminating phase to see.
      await run('/usr/bin/kubectl', [
        '--kubeconfig',
        standIn.kubeconfigPath,
        'delete',
        'pod',
        podName(specs[1]!.buildId),
        '--grace-period=0',
        '--force',
        '--wait=false',
      ]);
      for (const s of steps) {
        expect(await s.exit).toMatchObject({ kind: 'error', code: 'gone' });
        expect(s.sink.out()).toEqual(['ready']);
      }
    } finally {
      await Promise.all([executor.destroy(graceful!), executor.destroy(forced!)]);
    }
  });

  it("a watch that expires (410) and then goes half-open does not lose the step's exit or output", async () => {
    await withBuild(async (build) => {
      const s = start(build, step('watch', [sh.echo('ready'), sh.awaitFile('go'), sh.count(3), sh.exit(3)]));
      await s.ref;
      await hasLine(s.sink, 'ready');
      const expiredAt = Date.now();
      standIn.faults.expireWatches();
      // The executor re-lists and watches again; then that watch goes half-open.
      await eventually(BOUND, 'a new watch', () =>
        standIn.requests.some((r) => r.query.watch === 'true' && r.time >= expiredAt),
      );
      const stalledAt = Date.now();
      standIn.faults.stallWatches();
      await openGate(build, 'go');
      expect(await s.exit).toEqual({ kind: 'exited', exitCode: 3 });
      expect(s.sink.out()).toEqual(['ready', '1', '2', '3']);
      // The half-open watch was noticed (the watchdog listed again), not merely outlived.
      expect(
        standIn.requests.some(
          (r) =>
            r.method === 'GET' && r.path.endsWith('/pods') && r.query.watch !== 'true' && r.time >= stalledAt,
        ),
      ).toBe(true);
    });
  });

  it('log streams cut mid-way deliver every line exactly once, in order', async () => {
    await withBuild(async (build) => {
      const s = start(
        build,
        step('logs', [
          sh.count(5),
          sh.awaitFile('go'),
          'i=6; while test $i -le 40; do echo $i; sleep 0.05; i=$((i+1)); done',
        ]),
      );
      await hasLine(s.sink, '5');
      const cutAt = Date.now();
      standIn.faults.cutLogStreams();
      await openGate(build, 'go');
      // A second cut while lines arrive many a second: resumed within the second it was cut in.
      await hasLine(s.sink, '20');
      standIn.faults.cutLogStreams();
      expect(await s.exit).toEqual({ kind: 'exited', exitCode: 0 });
      expect(s.sink.out()).toEqual(Array.from({ length: 40 }, (_, i) => String(i + 1)));
      // The cut was real: the log was asked for again, from where it stopped.
      expect(
        standIn.requests.some((r) => r.path.endsWith('/log') && r.query.sinceTime && r.time >= cutAt),
      ).toBe(true);
    });
  });

  it("an API server restart while a step runs loses neither the step's output nor its exit", async () => {
    await withBuild(async (build) => {
      const s = start(
        build,
        step('restart', [sh.echo('ready'), sh.awaitFile('go'), sh.count(3), sh.exit(4)]),
      );
      await s.ref;
      await hasLine(s.sink, 'ready');
      await standIn.restart();
      await openGate(build, 'go');
      expect(await s.exit).toEqual({ kind: 'exited', exitCode: 4 });
      expect(s.sink.out()).toEqual(['ready', '1', '2', '3']);
    });
  });

  it("a step's secret is only in a Secret the pod owns, and nothing of the build is left after destroy", async () => {
    const value = 's3cr3t-value';
    // A checkout too: its seed ConfigMaps must go with the build.
    const source = await mkdtemp(join(tmpdir(), 'slipway-faults-'));
    await writeFile(join(source, 'README'), 'checked out\n');
    const s = { ...spec(), sourceDir: source };
    const labels = buildLabels(INSTALLATION, s);
    const selector = `slipway.dev/installation=${labels['slipway.dev/installation']},slipway.dev/build=${labels['slipway.dev/build']}`;
    const build = await within(BOUND, 'prepare', executor.prepare(s));
    try {
      const pod = podName(s.buildId);
      const st = start(
        build,
        step('secret', ['cat README', `printf '%s\\n' "$TOKEN" | tr a-z A-Z`], { secrets: { TOKEN: value } }),
      );
      expect(await st.exit).toEqual({ kind: 'exited', exitCode: 0 });
      expect(st.sink.out()).toEqual(['checked out', value.toUpperCase()]);
      expect((await api.listConfigMaps(selector)).length).toBeGreaterThan(0);

      const raw = await rawGet(`pods/${pod}`);
      expect(raw.status).toBe(200);
      const stored = JSON.parse(raw.text) as Pod;
      expect(stored.spec?.ephemeralContainers?.length).toBe(1);
      // The step read TOKEN through a reference to the Secret, the only place its value is.
      expect(stored.spec?.ephemeralContainers?.[0]?.env?.find((e) => e.name === 'TOKEN')).toMatchObject({
        valueFrom: { secretKeyRef: { key: 'TOKEN' } },
      });
      const encoded = Buffer.from(value).toString('base64');
      for (const text of [raw.text, (await rawGet('configmaps')).text]) {
        expect(text).not.toContain(value);
        expect(text).not.toContain(encoded);
      }
      const holding = (await api.listSecrets(selector)).filter((secret) =>
        Object.values(secret.data ?? {}).some((d) => Buffer.from(d, 'base64').toString() === value),
      );
      expect(holding).toHaveLength(1);
      expect(holding[0]?.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid])).toEqual([
        ['Pod', pod, stored.metadata?.uid],
      ]);
    } finally {
      await executor.destroy(build);
      await rm(source, { recursive: true, force: true });
    }
    expect((await api.listPods(selector)).items).toEqual([]);
    expect(await api.listSecrets(selector)).toEqual([]);
    expect(await api.listConfigMaps(selector)).toEqual([]);
  });

  it("kubectl get pods -l slipway.dev/build=… lists exactly that build's pod with its labels", async () => {
    const one = spec();
    const other = spec();
    const [a, b] = await within(
      BOUND,
      'prepare',
      Promise.all([executor.prepare(one), executor.prepare(other)]),
    );
    try {
      const labels = buildLabels(INSTALLATION, one);
      const { stdout } = await run('/usr/bin/kubectl', [
        '--kubeconfig',
        standIn.kubeconfigPath,
        'get',
        'pods',
        '-l',
        `slipway.dev/build=${labels['slipway.dev/build']}`,
        '-o',
        'json',
      ]);
      const list = JSON.parse(stdout) as { items: Pod[] };
      expect(list.items.map((p) => p.metadata?.name)).toEqual([podName(one.buildId)]);
      expect(list.items[0]?.metadata?.labels).toMatchObject({
        'slipway.dev/installation': INSTALLATION,
        'slipway.dev/project': labels['slipway.dev/project'],
        'slipway.dev/build': labels['slipway.dev/build'],
        'slipway.dev/branch': labels['slipway.dev/branch'],
      });
      // The label values are sanitized; the annotations keep what the build said.
      expect(list.items[0]?.metadata?.annotations).toMatchObject({
        'slipway.dev/project': one.project,
        'slipway.dev/branch': one.branch,
      });
    } finally {
      await Promise.all([executor.destroy(a), executor.destroy(b)]);
    }
  });
});
