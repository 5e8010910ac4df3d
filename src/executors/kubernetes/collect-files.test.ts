/**
 * `collectFiles` of the kubernetes executor against the STAND-IN API server, whose kubelet runs
 * the build pod on Podman: the shared conformance suite, and what the collect container reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFilesConformance } from '../collect-files.case.js';
import { RecordingSink } from '../executor.case.js';
import { enginePlan, findTestEngine } from '../docker/testing/test-engine.js';
import { runStep } from '../lifecycle.js';
import type { BuildHandle } from '../types.js';
import { createKubeApi } from './client/index.js';
import { CollectLog, Spool, type DirHeader } from './collect-files.js';
import type { KubeApi } from './kube-api.js';
import { KubernetesExecutor } from './kubernetes-executor.js';
import { podName } from './manifests/index.js';
import { startStandIn, type StandIn } from './testing/stand-in/index.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('kubernetes collectFiles (stand-in API server on Podman)', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(plan.reason);
    });
  });
}
const image = found.available ? found.image : '';

/** One stand-in and one executor for the whole file. */
let shared: Promise<{ standIn: StandIn; api: KubeApi; executor: KubernetesExecutor }> | undefined;
function target(): Promise<{ standIn: StandIn; api: KubeApi; executor: KubernetesExecutor }> {
  shared ??= (async () => {
    const standIn = await startStandIn({ kubelet: 'podman' });
    const api = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
    const executor = new KubernetesExecutor({
      api,
      installation: 'collect',
      helperImage: image,
      pull: 'Never',
      stopGraceSeconds: 1,
      deleteGraceSeconds: 1,
    });
    return { standIn, api, executor };
  })();
  return shared;
}

describe.skipIf(!found.available)('kubernetes collectFiles on the stand-in API server on Podman', () => {
  afterAll(async () => {
    if (!shared) return;
    const { standIn, executor } = await shared;
    await executor.close();
    await standIn.close();
  }, 120_000);

  collectFilesConformance('kubernetes (stand-in API server on Podman)', async () => ({
    executor: (await target()).executor,
    image,
  }));

  describe('what the collect container reads', { timeout: 120_000 }, () => {
    let handle: BuildHandle | undefined;
    const buildId = `collect-only-${process.pid.toString(36)}${Date.now().toString(36)}`;

    beforeAll(async () => {
      const { executor } = await target();
      handle = await executor.prepare({
        buildId,
        project: 'collect/only',
        branch: 'main',
        image,
        services: [],
      });
      const sink = new RecordingSink();
      const exit = await runStep(
        executor,
        handle,
        {
          key: 'build/make',
          stage: 'build',
          step: 'make',
          image,
          commands: [
            'mkdir -p dist/js other',
            "printf 'a' > dist/a.txt",
            "printf 'm' > dist/js/m.js",
            "printf 'o' > other/o.txt",
            "printf 'r' > root.txt",
          ],
          env: {},
          secrets: {},
          attempt: 1,
        },
        sink,
        new AbortController().signal,
      );
      expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 0 });
    }, 600_000);

    afterAll(async () => {
      if (handle) await (await target()).executor.destroy(handle);
    }, 120_000);

    it('reads only dist for dist/** (the collect container tars just that prefix)', async () => {
      const { api, executor } = await target();
      const paths: string[] = [];
      for await (const entry of executor.collectFiles(handle!, ['dist/**'])) {
        expect(entry.kind).toBe('file');
        paths.push(entry.path);
      }
      expect(paths.sort()).toEqual(['dist/a.txt', 'dist/js/m.js']);
      const pod = await api.getPod(podName(buildId));
      const collects = (pod?.spec?.ephemeralContainers ?? []).filter((c) => c.name.startsWith('collect-'));
      expect(collects).toHaveLength(1);
      const command = collects[0]!.command ?? [];
      // ['/bin/sh', '-c', SCRIPT, '$0', recurse, ...paths]
      expect(command.slice(4)).toEqual(['1', 'dist']);
      expect(collects[0]!.volumeMounts).toContainEqual({
        name: 'workspace',
        mountPath: '/workspace',
        readOnly: true,
      });
    });
  });
});

describe('collect log and spool (no cluster)', () => {
  const lines = (bytes: Buffer): string[] => (bytes.toString('base64').match(/.{1,76}/g) ?? []) as string[];

  it('decodes base64 lines, takes dir headers, and accepts a log whose count and status match', () => {
    const headers: DirHeader[] = [];
    const got: Buffer[] = [];
    const log = new CollectLog(headers, (b) => got.push(b));
    const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    log.line('slipway-collect: dir 0 2');
    for (const line of lines(payload)) log.line(line);
    log.line(`slipway-collect: end ${payload.length} 0`);
    expect(headers).toEqual([{ index: 0, dirs: 2 }]);
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    expect(log.problem(0)).toBeUndefined();
  });

  it('says why a log is not a whole tar: no marker, a short count, tar failed, stray lines', () => {
    const payload = Buffer.alloc(600, 7);
    const make = (edit: (all: string[]) => string[]): CollectLog => {
      const log = new CollectLog([], () => undefined);
      for (const line of edit([...lines(payload), `slipway-collect: end ${payload.length} 0`]))
        log.line(line);
      return log;
    };
    expect(make((all) => all.slice(0, -1)).problem(0)).toMatch(/without the end marker/);
    expect(make((all) => [...all.slice(0, 2), ...all.slice(3)]).problem(0)).toMatch(
      /received 543 of 600 bytes/,
    );
    expect(
      make((all) => [
        ...all.slice(0, -1),
        "slipway-collect: error: tar: can't open 'dist/x': Permission denied",
        `slipway-collect: end ${payload.length} 1`,
      ]).problem(1),
    ).toMatch(/tar failed \(status 1, exit code 1\): tar: can't open 'dist\/x': Permission denied/);
    expect(make((all) => ['sh: oops', ...all]).problem(0)).toMatch(/unexpected lines.*sh: oops/);
    expect(make((all) => all).problem(137)).toMatch(/exit code 137/);
  });

  it('keeps at most its memory bound for a slow reader, the rest in a file, in order', async () => {
    const spool = new Spool(4096);
    const sent: Buffer[] = [];
    const push = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const chunk = Buffer.alloc(1000, sent.length % 256);
        sent.push(chunk);
        spool.push(chunk);
      }
    };
    push(50);
    const received: Buffer[] = [];
    const reader = (async () => {
      for await (const chunk of spool.chunks()) {
        received.push(chunk);
        // A reader slower than the log: more arrives while it works.
        if (received.length === 3) push(50);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      await new Promise((resolve) => setImmediate(resolve));
      push(20);
      spool.end();
      await reader;
      expect(spool.spilled).toBe(true);
      expect(Buffer.concat(received).equals(Buffer.concat(sent))).toBe(true);
    } finally {
      await spool.close();
    }
  });
});
