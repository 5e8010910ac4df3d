/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-assignment -- API answers are untyped JSON, read field by field in assertions */
/**
 * Tests of the stand-in API server itself (not of a real cluster: none can run here), with an
 * in-memory kubelet so that they do not need Podman. `kubectl` cross-checks what it serves.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kubelet, KubeletFaults, PodHost } from './kubelet/types.js';
import { type StandIn, startStandIn } from './index.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- API answers read field by field in assertions

/**
 * A kubelet that runs nothing: a test says when a container runs or ends, and what it logs
 * (written as CRI log lines, as a real runtime writes them).
 */
class FakeKubelet implements Kubelet {
  readonly hosts = new Map<string, PodHost>();
  readonly deleted: { pod: string; grace: number }[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'fake-kubelet-'));
  private readonly files = new Map<string, string>();

  startPod(host: PodHost): void {
    this.hosts.set(host.pod()!.metadata!.name!, host);
  }
  ephemeralContainersAdded(host: PodHost): void {
    this.hosts.set(host.pod()!.metadata!.name!, host);
  }
  annotationsChanged(): void {}
  deletePod(host: PodHost, gracePeriodSeconds: number): void {
    this.deleted.push({ pod: host.pod()?.metadata?.name ?? '', grace: gracePeriodSeconds });
    setImmediate(() => host.removed());
  }
  logFile(pod: string, container: string): string | undefined {
    return this.files.get(`${pod}/${container}`);
  }
  readonly faults: KubeletFaults = {
    unpullable: () => this.unsupported(),
    unschedulable: () => this.unsupported(),
    oomKill: () => Promise.reject(new Error('FakeKubelet scripts no faults')),
    evict: () => Promise.reject(new Error('FakeKubelet scripts no faults')),
  };
  async close(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    return Promise.resolve();
  }

  private unsupported(): never {
    throw new Error('FakeKubelet scripts no faults');
  }

  private setState(pod: string, container: string, state: Json): void {
    this.hosts.get(pod)!.updateStatus((status) => {
      const ephemeral = !(this.hosts.get(pod)!.pod()!.spec!.containers ?? []).some(
        (c) => c.name === container,
      );
      const list = ephemeral ? (status.ephemeralContainerStatuses ??= []) : (status.containerStatuses ??= []);
      const entry = {
        name: container,
        image: 'img',
        imageID: '',
        ready: !!state.running,
        restartCount: 0,
        state,
      };
      const i = list.findIndex((s) => s.name === container);
      if (i < 0) list.push(entry);
      else list[i] = entry;
      status.phase = 'Running';
    });
  }
  waiting(pod: string, container: string, reason: string): void {
    this.setState(pod, container, { waiting: { reason } });
  }
  run(pod: string, container: string): void {
    this.files.set(`${pod}/${container}`, join(this.dir, `${pod}-${container}.log`));
    appendFileSync(this.files.get(`${pod}/${container}`)!, '');
    this.setState(pod, container, { running: { startedAt: '2024-05-01T10:00:00Z' } });
  }
  /** Appends CRI lines: `[time, 'F'|'P', text]`. */
  write(pod: string, container: string, lines: [string, 'F' | 'P', string][]): void {
    appendFileSync(
      this.files.get(`${pod}/${container}`)!,
      lines.map(([t, tag, text]) => `${t} stdout ${tag} ${text}\n`).join(''),
    );
  }
  terminate(pod: string, container: string, exitCode: number): void {
    this.setState(pod, container, {
      terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' },
    });
  }
}

async function api(
  standIn: StandIn,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; body: Json; text: string }> {
  const res = await fetch(`${standIn.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Json = {};
  try {
    parsed = JSON.parse(text) as Json;
  } catch {
    // Logs are plain text.
  }
  return { status: res.status, body: parsed, text };
}

/** A watch (or log) stream read line by line; `next()` waits for the next line. */
function stream(url: string) {
  const lines: string[] = [];
  let buffered = '';
  let wake: (() => void) | undefined;
  let status = 0;
  let ended = false;
  let text = '';
  let close = () => {};
  const done = new Promise<void>((resolve) => {
    const req = get(url, (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        buffered += chunk;
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        lines.push(...parts);
        wake?.();
      });
      res.on('close', finish);
    });
    // A connection destroyed (by close() or the server going away) also ends the stream.
    req.on('error', finish);
    function finish() {
      ended = true;
      wake?.();
      resolve();
    }
    close = () => req.destroy();
  });
  let read = 0;
  return {
    get status() {
      return status;
    },
    get text() {
      return text;
    },
    done,
    close: () => close(),
    /** Waits until `predicate` holds for what arrived so far. */
    async until(predicate: () => boolean): Promise<void> {
      while (!predicate()) {
        if (ended) throw new Error(`stream ended first; got: ${text}`);
        await new Promise<void>((r) => (wake = r));
      }
    },
    async next(): Promise<Json> {
      while (read >= lines.length) {
        if (ended) throw new Error(`watch ended; got: ${text}`);
        await new Promise<void>((r) => (wake = r));
      }
      return JSON.parse(lines[read++]!) as Json;
    },
  };
}

const pod = (name: string, labels: Record<string, string> = {}, containers = ['main']) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: {
    restartPolicy: 'Never',
    volumes: [{ name: 'workspace', emptyDir: {} }],
    containers: containers.map((c) => ({
      name: c,
      image: 'localhost/busybox:latest',
      command: ['sleep', '60'],
    })),
  },
});
const ns = '/api/v1/namespaces/ci-builds';

describe('stand-in API server (tested itself, with an in-memory kubelet; no real cluster)', () => {
  let standIn: StandIn;
  let kubelet: FakeKubelet;

  beforeAll(async () => {
    kubelet = new FakeKubelet();
    standIn = await startStandIn({ kubelet });
  });
  afterAll(async () => {
    await standIn.close();
  });

  it('stand-in: a watch from a resourceVersion delivers exactly the later changes, in order', async () => {
    const first = await api(standIn, 'POST', `${ns}/pods`, pod('w-1', { t: 'watch' }));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ kind: 'Pod', apiVersion: 'v1', metadata: { generation: 1 } });
    expect(first.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    const list = await api(standIn, 'GET', `${ns}/pods?labelSelector=t%3Dwatch`);
    expect(list.body).toMatchObject({ kind: 'PodList', apiVersion: 'v1' });
    expect(list.body.items.map((p: Json) => p.metadata.name)).toEqual(['w-1']);
    expect(list.body.items[0].kind).toBeUndefined(); // as a real server's list items
    await api(standIn, 'POST', `${ns}/pods`, pod('w-2', { t: 'watch' }));
    await api(standIn, 'POST', `${ns}/pods`, pod('other', { t: 'else' }));
    await api(
      standIn,
      'PATCH',
      `${ns}/pods/w-1`,
      { metadata: { annotations: { a: 'b' } } },
      'application/merge-patch+json',
    );
    const w = stream(
      `${standIn.url}${ns}/pods?watch=true&labelSelector=t%3Dwatch&resourceVersion=${list.body.metadata.resourceVersion}`,
    );
    expect(await w.next()).toMatchObject({
      type: 'ADDED',
      object: { kind: 'Pod', metadata: { name: 'w-2' } },
    });
    expect(await w.next()).toMatchObject({
      type: 'MODIFIED',
      object: { metadata: { name: 'w-1', annotations: { a: 'b' } } },
    });
    // A label change out of the selector is a DELETED for this watch.
    await api(
      standIn,
      'PATCH',
      `${ns}/pods/w-2`,
      { metadata: { labels: { t: 'gone' } } },
      'application/merge-patch+json',
    );
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'w-2' } } });
    w.close();
  });

  it('stand-in: 410 Expired for a resourceVersion older than the window, and expireWatches()', async () => {
    const small = await startStandIn({ kubelet: new FakeKubelet(), eventWindow: 2, namespace: 'n2' });
    try {
      const created = await api(small, 'POST', '/api/v1/namespaces/n2/pods', pod('e-1'));
      const rv = created.body.metadata.resourceVersion as string;
      for (const n of ['e-2', 'e-3', 'e-4']) await api(small, 'POST', '/api/v1/namespaces/n2/pods', pod(n));
      const old = stream(
        `${small.url}/api/v1/namespaces/n2/pods?watch=true&resourceVersion=${Number(rv) - 1}`,
      );
      expect(await old.next()).toMatchObject({
        type: 'ERROR',
        object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 },
      });
      await old.done;
      expect(old.status).toBe(200);
      const list = await api(small, 'GET', '/api/v1/namespaces/n2/pods');
      const open = stream(
        `${small.url}/api/v1/namespaces/n2/pods?watch=true&resourceVersion=${list.body.metadata.resourceVersion}`,
      );
      await api(small, 'POST', '/api/v1/namespaces/n2/pods', pod('e-5'));
      expect(await open.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'e-5' } } });
      small.faults.expireWatches();
      expect(await open.next()).toMatchObject({ type: 'ERROR', object: { reason: 'Expired', code: 410 } });
      await open.done;
      const again = stream(
        `${small.url}/api/v1/namespaces/n2/pods?watch=true&resourceVersion=${list.body.metadata.resourceVersion}`,
      );
      expect(await again.next()).toMatchObject({ type: 'ERROR', object: { code: 410 } });
      // Another namespace is not served.
      expect((await api(small, 'GET', '/api/v1/namespaces/ci-builds/pods')).body).toMatchObject({
        kind: 'Status',
        code: 403,
        reason: 'Forbidden',
      });
    } finally {
      await small.close();
    }
  });

  it('stand-in: bookmarks carry the current resourceVersion; timeoutSeconds ends the watch', async () => {
    const quick = await startStandIn({ kubelet: new FakeKubelet(), bookmarkIntervalMs: 20, namespace: 'n3' });
    try {
      await api(quick, 'POST', '/api/v1/namespaces/n3/pods', pod('b-1'));
      const w = stream(
        `${quick.url}/api/v1/namespaces/n3/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1`,
      );
      expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'b-1' } } });
      const created = await api(quick, 'POST', '/api/v1/namespaces/n3/pods', pod('b-2'));
      // Bookmarks may come between the events: skip them up to b-2's ADDED.
      let e = await w.next();
      while (e.type === 'BOOKMARK') e = await w.next();
      expect(e).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'b-2' } } });
      e = await w.next();
      while (e.type !== 'BOOKMARK') e = await w.next();
      expect(e.object).toMatchObject({
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { resourceVersion: created.body.metadata.resourceVersion },
      });
      await w.done;
    } finally {
      await quick.close();
    }
  });

  it('stand-in: label selectors (=, ==, !=, in, notin, exists, !exists) and fieldSelector metadata.name', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('l-1', { 'slipway.dev/build': 'x1', tier: 'a' }));
    await api(standIn, 'POST', `${ns}/pods`, pod('l-2', { 'slipway.dev/build': 'x2', tier: 'b' }));
    await api(standIn, 'POST', `${ns}/pods`, pod('l-3', { 'slipway.dev/build': 'x3' }));
    const names = async (q: string) =>
      ((await api(standIn, 'GET', `${ns}/pods?${q}`)).body.items as Json[])
        .map((p) => p.metadata.name as string)
        .filter((n) => n.startsWith('l-'));
    const sel = (s: string) => `labelSelector=${encodeURIComponent(s)}`;
    expect(await names(sel('slipway.dev/build=x1'))).toEqual(['l-1']);
    expect(await names(sel('slipway.dev/build==x2'))).toEqual(['l-2']);
    expect(await names(sel('slipway.dev/build,tier!=a'))).toEqual(['l-2', 'l-3']);
    expect(await names(sel('slipway.dev/build in (x1, x3)'))).toEqual(['l-1', 'l-3']);
    expect(await names(sel('slipway.dev/build,tier notin (a)'))).toEqual(['l-2', 'l-3']);
    expect(await names(sel('slipway.dev/build,!tier'))).toEqual(['l-3']);
    expect(await names('fieldSelector=metadata.name%3Dl-2')).toEqual(['l-2']);
    const bad = await api(standIn, 'GET', `${ns}/pods?${sel('a in (')}`);
    expect(bad.body).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
    const field = await api(standIn, 'GET', `${ns}/pods?fieldSelector=spec.foo%3Dx`);
    expect(field.body).toMatchObject({ code: 400, message: 'field label not supported: spec.foo' });
  });

  it('stand-in: create rejects an unknown field with its path (422 Invalid), a duplicate with 409', async () => {
    const p = pod('v-1') as Json;
    p.spec.containers[0].imagePullPolicyy = 'Always';
    const res = await api(standIn, 'POST', `${ns}/pods`, p);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Invalid',
      code: 422,
      details: { name: 'v-1', kind: 'Pod' },
    });
    expect(res.body.message).toContain('spec.containers[0].imagePullPolicyy');
    expect(res.body.details.causes).toContainEqual(
      expect.objectContaining({ field: 'spec.containers[0].imagePullPolicyy' }),
    );
    expect((await api(standIn, 'POST', `${ns}/pods`, pod('v-2'))).status).toBe(201);
    const dup = await api(standIn, 'POST', `${ns}/pods`, pod('v-2'));
    expect(dup.body).toMatchObject({
      code: 409,
      reason: 'AlreadyExists',
      message: 'pods "v-2" already exists',
    });
    const missing = await api(standIn, 'GET', `${ns}/pods/nope`);
    expect(missing.body).toMatchObject({ code: 404, reason: 'NotFound', message: 'pods "nope" not found' });
  });

  it('stand-in: logs: 400 while waiting and without a container, follow, timestamps, sinceTime, 404 once gone', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('log-1', {}, ['main', 'side']));
    const noContainer = await api(standIn, 'GET', `${ns}/pods/log-1/log`);
    expect(noContainer.body).toMatchObject({
      code: 400,
      message: 'a container name must be specified for pod log-1, choose one of: [main side]',
    });
    const waiting = await api(standIn, 'GET', `${ns}/pods/log-1/log?container=main`);
    expect(waiting.body).toMatchObject({
      code: 400,
      reason: 'BadRequest',
      message: 'container "main" in pod "log-1" is waiting to start: ContainerCreating',
    });
    kubelet.run('log-1', 'main');
    kubelet.write('log-1', 'main', [
      ['2024-05-01T10:00:00.100000000Z', 'F', 'one'],
      ['2024-05-01T10:00:01.500000000Z', 'P', 'tw'],
      ['2024-05-01T10:00:01.600000000Z', 'F', 'o'],
    ]);
    const follow = stream(`${standIn.url}${ns}/pods/log-1/log?container=main&follow=true&timestamps=true`);
    await follow.until(() => follow.text.includes('two'));
    kubelet.write('log-1', 'main', [['2024-05-01T10:00:02.000000000Z', 'F', 'three']]);
    await follow.until(() => follow.text.includes('three'));
    kubelet.terminate('log-1', 'main', 0);
    await follow.done;
    expect(follow.text).toBe(
      '2024-05-01T10:00:00.1Z one\n2024-05-01T10:00:01.5Z two\n2024-05-01T10:00:02Z three\n',
    );
    // sinceTime at second precision: 10:00:01.9 means from 10:00:01.
    const since = await api(
      standIn,
      'GET',
      `${ns}/pods/log-1/log?container=main&sinceTime=2024-05-01T10:00:01.9Z`,
    );
    expect(since.text).toBe('two\nthree\n');
    expect((await api(standIn, 'GET', `${ns}/pods/log-1/log?container=main&tailLines=1`)).text).toBe(
      'three\n',
    );
    expect((await api(standIn, 'GET', `${ns}/pods/log-1/log?container=main&limitBytes=5`)).text).toBe(
      'one\nt',
    );
    await api(standIn, 'DELETE', `${ns}/pods/log-1?gracePeriodSeconds=0`);
    const gone = await api(standIn, 'GET', `${ns}/pods/log-1/log?container=main`);
    expect(gone.body).toMatchObject({ code: 404, message: 'pods "log-1" not found' });
  });

  it('stand-in: cutLogStreams() ends an open follow while the container runs', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('cut-1'));
    kubelet.run('cut-1', 'main');
    kubelet.write('cut-1', 'main', [['2024-05-01T10:00:00Z', 'F', 'a']]);
    const follow = stream(`${standIn.url}${ns}/pods/cut-1/log?follow=true`);
    await follow.until(() => follow.text === 'a\n');
    standIn.faults.cutLogStreams();
    await follow.done;
    expect(follow.text).toBe('a\n');
  });

  it('stand-in: ephemeral containers are merged by name; existing unchanged; resources forbidden', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('eph-1'));
    const step = (name: string, extra: Json = {}) => ({
      name,
      image: 'localhost/busybox:latest',
      command: ['sh', '-c', 'true'],
      volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
      ...extra,
    });
    const path = `${ns}/pods/eph-1/ephemeralcontainers`;
    const smp = 'application/strategic-merge-patch+json';
    const one = await api(standIn, 'PATCH', path, { spec: { ephemeralContainers: [step('s-1')] } }, smp);
    expect(one.status).toBe(200);
    expect(one.body.metadata.generation).toBe(2);
    const two = await api(
      standIn,
      'PATCH',
      path,
      { spec: { ephemeralContainers: [step('s-1'), step('s-2')] } },
      smp,
    );
    expect(two.body.spec.ephemeralContainers.map((c: Json) => c.name)).toEqual(['s-1', 's-2']);
    expect(two.body.spec.ephemeralContainers[1]).toMatchObject({
      imagePullPolicy: 'Always',
      terminationMessagePolicy: 'File',
    });
    const changed = await api(
      standIn,
      'PATCH',
      path,
      { spec: { ephemeralContainers: [step('s-1', { image: 'other' })] } },
      smp,
    );
    expect(changed.body).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(changed.body.message).toContain('existing ephemeral containers "s-1" may not be changed');
    const withResources = await api(
      standIn,
      'PATCH',
      path,
      { spec: { ephemeralContainers: [step('s-3', { resources: { limits: { cpu: '1' } } })] } },
      smp,
    );
    expect(withResources.body.message).toContain(
      'spec.ephemeralContainers[2].resources: Forbidden: cannot be set for an Ephemeral Container',
    );
    const json = await api(standIn, 'PATCH', path, { spec: {} }, 'application/json');
    expect(json.body).toMatchObject({ code: 415, reason: 'UnsupportedMediaType' });
    const got = await api(standIn, 'GET', path);
    expect(got.body.spec.ephemeralContainers).toHaveLength(2);
  });

  it('stand-in: delete sets deletionTimestamp (MODIFIED), then DELETED, and the owned Secret is collected', async () => {
    const created = await api(standIn, 'POST', `${ns}/pods`, pod('del-1', { t: 'del' }));
    kubelet.run('del-1', 'main');
    const uid = created.body.metadata.uid as string;
    const owner = { apiVersion: 'v1', kind: 'Pod', name: 'del-1', uid, controller: true };
    const secret = await api(standIn, 'POST', `${ns}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'del-1-env', ownerReferences: [owner] },
      stringData: { TOKEN: 's3cret' },
    });
    expect(secret.body).toMatchObject({
      type: 'Opaque',
      data: { TOKEN: Buffer.from('s3cret').toString('base64') },
    });
    expect(secret.body.stringData).toBeUndefined();
    expect(kubelet.hosts.get('del-1')!.secretValue('del-1-env', 'TOKEN')).toBe('s3cret');
    const rv = (await api(standIn, 'GET', `${ns}/pods/del-1`)).body.metadata.resourceVersion as string;
    const w = stream(`${standIn.url}${ns}/pods?watch=true&labelSelector=t%3Ddel&resourceVersion=${rv}`);
    const del = await api(
      standIn,
      'DELETE',
      `${ns}/pods/del-1?gracePeriodSeconds=5&propagationPolicy=Background`,
    );
    expect(del.status).toBe(200);
    expect(del.body.metadata.deletionGracePeriodSeconds).toBe(5);
    expect(await w.next()).toMatchObject({
      type: 'MODIFIED',
      object: { metadata: { name: 'del-1', deletionTimestamp: expect.any(String) } },
    });
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'del-1' } } });
    expect(kubelet.deleted).toContainEqual({ pod: 'del-1', grace: 5 });
    expect((await api(standIn, 'GET', `${ns}/secrets/del-1-env`)).status).toBe(404);
    w.close();
  });

  it('stand-in: events recorded by the kubelet are listed by involvedObject.name and type', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('ev-1'));
    kubelet.hosts.get('ev-1')!.warn('Failed', 'Failed to pull image "nope"');
    kubelet.hosts.get('ev-1')!.warn('Failed', 'Failed to pull image "nope"');
    const events = await api(
      standIn,
      'GET',
      `${ns}/events?fieldSelector=involvedObject.name%3Dev-1,type%3DWarning`,
    );
    expect(events.body.items).toHaveLength(1);
    expect(events.body.items[0]).toMatchObject({
      reason: 'Failed',
      count: 2,
      involvedObject: { kind: 'Pod', name: 'ev-1' },
    });
    const review = await api(standIn, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {
        resourceAttributes: {
          namespace: 'ci-builds',
          verb: 'patch',
          resource: 'pods',
          subresource: 'ephemeralcontainers',
        },
      },
    });
    expect(review.body.status).toMatchObject({ allowed: true });
  });

  it('stand-in: stallWatches() leaves open watches silent and connected; new watches work', async () => {
    const list = await api(standIn, 'GET', `${ns}/pods?labelSelector=t%3Dstall`);
    const from = list.body.metadata.resourceVersion as string;
    const stalled = stream(
      `${standIn.url}${ns}/pods?watch=true&labelSelector=t%3Dstall&resourceVersion=${from}`,
    );
    await api(standIn, 'POST', `${ns}/pods`, pod('st-1', { t: 'stall' }));
    expect(await stalled.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'st-1' } } });
    standIn.faults.stallWatches();
    const seen = stalled.text;
    await api(standIn, 'POST', `${ns}/pods`, pod('st-2', { t: 'stall' }));
    const fresh = stream(
      `${standIn.url}${ns}/pods?watch=true&labelSelector=t%3Dstall&resourceVersion=${from}`,
    );
    expect(await fresh.next()).toMatchObject({ object: { metadata: { name: 'st-1' } } });
    expect(await fresh.next()).toMatchObject({ object: { metadata: { name: 'st-2' } } });
    expect(stalled.text).toBe(seen);
    const ended = await Promise.race([stalled.done.then(() => true), Promise.resolve(false)]);
    expect(ended).toBe(false);
    stalled.close();
    fresh.close();
  });

  it('stand-in: restart() keeps the objects and the port, and drops open watches', async () => {
    await api(standIn, 'POST', `${ns}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'keep' },
      data: { a: 'b' },
    });
    const w = stream(`${standIn.url}${ns}/configmaps?watch=true`);
    expect(await w.next()).toMatchObject({ type: 'ADDED' });
    await standIn.restart();
    await w.done;
    const got = await api(standIn, 'GET', `${ns}/configmaps/keep`);
    expect(got.body).toMatchObject({ kind: 'ConfigMap', data: { a: 'b' } });
  });

  it('stand-in: kubectl get pods -l lists exactly the pods with that label', async () => {
    await api(standIn, 'POST', `${ns}/pods`, pod('k-1', { 'slipway.dev/build': 'b1' }));
    await api(standIn, 'POST', `${ns}/pods`, pod('k-2', { 'slipway.dev/build': 'b1' }));
    await api(standIn, 'POST', `${ns}/pods`, pod('k-3', { 'slipway.dev/build': 'b2' }));
    const home = mkdtempSync(join(tmpdir(), 'kubectl-home-'));
    try {
      const { stdout } = await promisify(execFile)(
        '/usr/bin/kubectl',
        ['--kubeconfig', standIn.kubeconfigPath, 'get', 'pods', '-l', 'slipway.dev/build=b1', '-o', 'json'],
        { env: { ...process.env, HOME: home, KUBECONFIG: '' } },
      );
      const list = JSON.parse(stdout) as Json;
      expect(list.items.map((p: Json) => p.metadata.name).sort()).toEqual(['k-1', 'k-2']);
      expect(list.items[0].metadata.labels['slipway.dev/build']).toBe('b1');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
