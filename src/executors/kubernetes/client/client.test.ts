import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { until } from '../../../testing/until.js';
import { KubeApiError } from '../kube-api.js';
import type { KubeApi, LogLine, Pod, PodChange } from '../kube-api.js';
import { createKubeApi } from './index.js';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}
type Handler = (request: Recorded, res: ServerResponse, raw: IncomingMessage) => void;

const NS = 'ci';
const TOKEN = 'sekret-token';
let server: Server;
let dir: string;
let kubeconfig: string;
let api: KubeApi;
let handler: Handler;
let requests: Recorded[];

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function pod(name: string, resourceVersion: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, resourceVersion } };
}

/** One line of a watch stream. */
function event(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

function watches(): Recorded[] {
  return requests.filter((r) => r.query.get('watch') === 'true');
}

function lists(): Recorded[] {
  return requests.filter(
    (r) => r.method === 'GET' && r.path.endsWith('/pods') && r.query.get('watch') !== 'true',
  );
}

/** Collects watch changes; `until` waits on them. */
function startWatch(options?: { watchdogMs?: number }): { changes: PodChange[]; stop: () => Promise<void> } {
  const changes: PodChange[] = [];
  const controller = new AbortController();
  const done = api.watchPods('app=x', (change) => changes.push(change), controller.signal, options);
  return {
    changes,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

function summary(changes: PodChange[]): string[] {
  return changes.map((c) =>
    c.type === 'SYNC'
      ? `SYNC ${c.pods.map((p) => `${p.metadata?.name}@${p.metadata?.resourceVersion}`).join(',')}`
      : `${c.type} ${c.pod.metadata?.name}@${c.pod.metadata?.resourceVersion}`,
  );
}

/** Follows a log; `ended` answers come from the list, in order. */
async function follow(endedAnswers: boolean[], signal = new AbortController().signal): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  await api.followLog(
    {
      pod: 'p1',
      container: 'step-a',
      ended: () => Promise.resolve(endedAnswers.shift() ?? true),
      signal,
    },
    (line) => lines.push(line),
  );
  return lines;
}

function texts(lines: LogLine[]): string[] {
  return lines.map((l) => `${l.text.toString()}${l.newline ? '' : ' (no newline)'}`);
}

describe('against a scripted stand-in of the Kubernetes API', () => {
  beforeAll(async () => {
    server = createServer((raw, res) => {
      const chunks: Buffer[] = [];
      raw.on('data', (chunk: Buffer) => chunks.push(chunk));
      raw.on('end', () => {
        const url = new URL(raw.url ?? '/', 'http://stand-in');
        const recorded = {
          method: raw.method ?? '',
          path: url.pathname,
          query: url.searchParams,
          headers: raw.headers,
          body: Buffer.concat(chunks).toString(),
        };
        requests.push(recorded);
        handler(recorded, res, raw);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    dir = await mkdtemp(join(tmpdir(), 'slipway-kube-client-'));
    kubeconfig = join(dir, 'config');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: stand-in`,
        `  cluster: {server: "http://127.0.0.1:${port}"}`,
        'users:',
        `- name: ci`,
        `  user: {token: ${TOKEN}}`,
        'contexts:',
        `- name: ci`,
        `  context: {cluster: stand-in, user: ci, namespace: ${NS}}`,
        'current-context: ci',
        '',
      ].join('\n'),
    );
    api = await createKubeApi({ kubeconfig });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    requests = [];
    handler = (_request, res) =>
      json(res, 500, { kind: 'Status', reason: 'InternalError', message: 'unscripted' });
  });

  it('sends each call as the API expects: method, path, query, content type, body, bearer token', async () => {
    handler = (r, res) => {
      if (r.path === '/version') return json(res, 200, { gitVersion: 'v1.34.1' });
      if (r.path.endsWith('/pods/gone'))
        return json(res, 404, { kind: 'Status', reason: 'NotFound', code: 404 });
      if (r.path.endsWith('/events')) {
        return json(res, 200, {
          items: [
            { metadata: { name: 'late' }, lastTimestamp: '2024-01-01T00:00:09Z' },
            { metadata: { name: 'early' }, lastTimestamp: '2024-01-01T00:00:01Z' },
            { metadata: { name: 'middle' }, eventTime: '2024-01-01T00:00:05.000001Z' },
          ],
        });
      }
      if (r.path.endsWith('/selfsubjectaccessreviews')) {
        return json(res, 201, { ...(JSON.parse(r.body) as object), status: { allowed: true } });
      }
      if (r.method === 'GET' && r.path.endsWith('/pods')) {
        return json(res, 200, { metadata: { resourceVersion: '42' }, items: [{ metadata: { name: 'a' } }] });
      }
      json(res, 200, r.body ? JSON.parse(r.body) : { kind: 'Status', status: 'Success' });
    };
    const created = await api.createPod(pod('p1', ''));
    expect(created.metadata?.name).toBe('p1');
    expect(await api.getPod('gone')).toBeUndefined();
    expect(await api.listPods('slipway.dev/build=b1')).toEqual({
      items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' } }],
      resourceVersion: '42',
    });
    await api.annotatePod('p1', { 'slipway.dev/stop': 'step-a', old: null });
    await api.addEphemeralContainer('p1', { name: 'step-a-1', image: 'busybox' });
    await api.deletePod('p1', 5);
    await api.deletePod('gone');
    await api.deletePods('slipway.dev/build=b1');
    await api.setSecretOwner('s1', { apiVersion: 'v1', kind: 'Pod', name: 'p1', uid: 'u1' });
    await api.setConfigMapOwner('c1', { apiVersion: 'v1', kind: 'Pod', name: 'p1', uid: 'u1' });
    expect(await api.canI('patch', 'pods', 'ephemeralcontainers')).toBe(true);
    expect((await api.podWarnings('p1')).map((e) => e.metadata?.name)).toEqual(['early', 'middle', 'late']);
    expect(await api.version()).toBe('v1.34.1');

    const base = `/api/v1/namespaces/${NS}`;
    const seen = requests.map((r) => ({
      call: `${r.method} ${r.path}${[...r.query].length ? `?${r.query.toString()}` : ''}`,
      type: r.headers['content-type'],
      body: r.body ? (JSON.parse(r.body) as unknown) : undefined,
    }));
    expect(seen).toEqual([
      { call: `POST ${base}/pods`, type: 'application/json', body: pod('p1', '') },
      { call: `GET ${base}/pods/gone`, type: undefined, body: undefined },
      { call: `GET ${base}/pods?labelSelector=slipway.dev%2Fbuild%3Db1`, type: undefined, body: undefined },
      {
        call: `PATCH ${base}/pods/p1`,
        type: 'application/merge-patch+json',
        body: { metadata: { annotations: { 'slipway.dev/stop': 'step-a', old: null } } },
      },
      {
        call: `PATCH ${base}/pods/p1/ephemeralcontainers`,
        type: 'application/strategic-merge-patch+json',
        body: { spec: { ephemeralContainers: [{ name: 'step-a-1', image: 'busybox' }] } },
      },
      {
        call: `DELETE ${base}/pods/p1?gracePeriodSeconds=5&propagationPolicy=Background`,
        type: undefined,
        body: undefined,
      },
      { call: `DELETE ${base}/pods/gone?propagationPolicy=Background`, type: undefined, body: undefined },
      {
        call: `DELETE ${base}/pods?labelSelector=slipway.dev%2Fbuild%3Db1&propagationPolicy=Background`,
        type: undefined,
        body: undefined,
      },
      {
        call: `PATCH ${base}/secrets/s1`,
        type: 'application/merge-patch+json',
        body: { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'p1', uid: 'u1' }] } },
      },
      {
        call: `PATCH ${base}/configmaps/c1`,
        type: 'application/merge-patch+json',
        body: { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'p1', uid: 'u1' }] } },
      },
      {
        call: 'POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        type: 'application/json',
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              namespace: NS,
              verb: 'patch',
              group: '',
              resource: 'pods',
              subresource: 'ephemeralcontainers',
            },
          },
        },
      },
      {
        call: `GET ${base}/events?fieldSelector=involvedObject.name%3Dp1%2Ctype%3DWarning`,
        type: undefined,
        body: undefined,
      },
      { call: 'GET /version', type: undefined, body: undefined },
    ]);
    for (const r of requests) expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('surfaces the Status of a failed call: 409 AlreadyExists with its message', async () => {
    handler = (_r, res) =>
      json(res, 409, {
        kind: 'Status',
        status: 'Failure',
        reason: 'AlreadyExists',
        message: 'pods "p1" already exists',
        code: 409,
      });
    const error = await api.createPod(pod('p1', '')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({
      status: 409,
      reason: 'AlreadyExists',
      message: 'pods "p1" already exists',
    });
  });

  it('ends a call the server does not answer with a status-0 Timeout error', async () => {
    handler = () => {
      // Accepts the request and never answers.
    };
    const impatient = await createKubeApi({ kubeconfig, requestTimeoutMs: 200 });
    const error = await impatient.getPod('p1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 0, reason: 'Timeout' });
  });

  it('re-lists after a 410 ERROR event and goes on without losing or repeating a change', async () => {
    handler = (r, res) => {
      if (r.query.get('watch') !== 'true') {
        const first = lists().length === 1;
        return json(res, 200, {
          metadata: { resourceVersion: first ? '10' : '20' },
          items: first ? [pod('a', '10')] : [pod('a', '12'), pod('b', '15')],
        });
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (r.query.get('resourceVersion') === '10') {
        res.write(event('MODIFIED', pod('a', '11')));
        res.write(event('ERROR', { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 }));
        // Anything after the ERROR is older than the re-list: it must not be delivered.
        res.end(event('MODIFIED', pod('a', '12')));
      } else {
        res.write(event('ADDED', pod('c', '21')));
      }
    };
    const watch = startWatch();
    await until(() => Promise.resolve(watch.changes.length >= 4));
    await watch.stop();
    expect(summary(watch.changes)).toEqual(['SYNC a@10', 'MODIFIED a@11', 'SYNC a@12,b@15', 'ADDED c@21']);
    const [first, second] = watches();
    expect(first?.query.get('resourceVersion')).toBe('10');
    expect(first?.query.get('allowWatchBookmarks')).toBe('true');
    expect(first?.query.get('labelSelector')).toBe('app=x');
    expect(Number(first?.query.get('timeoutSeconds'))).toBeGreaterThanOrEqual(270);
    expect(Number(first?.query.get('timeoutSeconds'))).toBeLessThanOrEqual(330);
    expect(second?.query.get('resourceVersion')).toBe('20');
    expect(lists()).toHaveLength(2);
  });

  it('takes the resourceVersion of bookmarks: the next watch starts there, without a re-list', async () => {
    handler = (r, res) => {
      if (r.query.get('watch') !== 'true') {
        return json(res, 200, { metadata: { resourceVersion: '5' }, items: [] });
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (watches().length === 1) {
        res.write(event('ADDED', pod('a', '6')));
        // The server's timeoutSeconds ran out: the stream ends cleanly.
        res.end(event('BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: '9' } }));
      } else {
        res.write(event('MODIFIED', pod('a', '10')));
      }
    };
    const watch = startWatch();
    await until(() => Promise.resolve(watch.changes.length >= 3));
    await watch.stop();
    expect(summary(watch.changes)).toEqual(['SYNC ', 'ADDED a@6', 'MODIFIED a@10']);
    expect(watches().map((w) => w.query.get('resourceVersion'))).toEqual(['5', '9']);
    expect(lists()).toHaveLength(1);
  });

  it('abandons a half-open watch (headers, then silence) when the watchdog fires, and re-lists', async () => {
    let firstWatchClosed = false;
    handler = (r, res, raw) => {
      if (r.query.get('watch') !== 'true') {
        const n = lists().length;
        return json(res, 200, { metadata: { resourceVersion: String(n) }, items: [pod('a', String(n))] });
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      if (watches().length === 1) raw.socket.on('close', () => (firstWatchClosed = true));
      else res.write(event('MODIFIED', pod('a', '7')));
    };
    const watch = startWatch({ watchdogMs: 300 });
    await until(() => Promise.resolve(summary(watch.changes).includes('MODIFIED a@7')));
    await watch.stop();
    // On a stalled machine the watchdog may also fire on a later watch: more SYNCs, same order.
    const seen = summary(watch.changes);
    expect(seen.slice(0, 2)).toEqual(['SYNC a@1', 'SYNC a@2']);
    expect(seen.filter((s) => !s.startsWith('SYNC'))[0]).toBe('MODIFIED a@7');
    await until(() => Promise.resolve(firstWatchClosed));
  });

  it('resumes a log stream cut mid-way with sinceTime: every line exactly once, also lines sharing a timestamp across the cut', async () => {
    const log = [
      '2024-01-01T00:00:01.000000001Z one',
      '2024-01-01T00:00:02.1Z two',
      '2024-01-01T00:00:02.5Z three',
      '2024-01-01T00:00:02.5Z four',
      '2024-01-01T00:00:02.5Z five',
      '2024-01-01T00:00:02.7Z six',
      '2024-01-01T00:00:03Z seven',
    ];
    // Each read: which lines it sends (from its sinceTime on), and whether the log ends in a
    // piece without a newline.
    const reads = [log.slice(0, 4), log.slice(1, 6), log.slice(1, 7), log.slice(1, 7)];
    handler = (_r, res) => {
      const n = requests.length - 1;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const lines = reads[n] ?? [];
      res.end(lines.map((l) => `${l}\n`).join('') + (n === 3 ? '2024-01-01T00:00:03.5Z the end' : ''));
    };
    const lines = await follow([false, false, true]);
    expect(texts(lines)).toEqual([
      'one',
      'two',
      'three',
      'four',
      'five',
      'six',
      'seven',
      'the end (no newline)',
    ]);
    expect(requests.map((r) => [r.path, r.query.get('follow'), r.query.get('sinceTime')])).toEqual([
      [`/api/v1/namespaces/${NS}/pods/p1/log`, 'true', null],
      [`/api/v1/namespaces/${NS}/pods/p1/log`, 'true', '2024-01-01T00:00:02Z'],
      [`/api/v1/namespaces/${NS}/pods/p1/log`, 'true', '2024-01-01T00:00:02Z'],
      [`/api/v1/namespaces/${NS}/pods/p1/log`, null, '2024-01-01T00:00:03Z'],
    ]);
    for (const r of requests) {
      expect(r.query.get('container')).toBe('step-a');
      expect(r.query.get('timestamps')).toBe('true');
      expect(r.query.has('pretty')).toBe(false);
    }
  });

  it('delivers a 2 MB line in pieces of at most 1 MiB whose concatenation is the line, across a cut inside it', async () => {
    const line = Buffer.alloc(2 * 1024 * 1024 + 17);
    for (let i = 0; i < line.length; i++) line[i] = 97 + (i % 26);
    const stamp = Buffer.from('2024-01-01T00:00:01.5Z ');
    handler = (_r, res, raw) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      if (requests.length === 1) {
        // Cut after 1.5 MiB of the line: the connection dies mid-line.
        res.write(Buffer.concat([stamp, line.subarray(0, 1536 * 1024)]), () => raw.socket.destroy());
      } else {
        res.end(Buffer.concat([stamp, line, Buffer.from('\n')]));
      }
    };
    const pieces = await follow([false, true]);
    expect(Buffer.concat(pieces.map((p) => p.text)).equals(line)).toBe(true);
    expect(pieces.map((p) => p.newline)).toEqual([...pieces.slice(1).map(() => false), true]);
    for (const p of pieces) expect(p.text.length).toBeLessThanOrEqual(1024 * 1024);
    expect(pieces.length).toBeGreaterThanOrEqual(3);
  });

  it('waits out 400 while the container is created, then reads the log; 404 (the pod gone) ends it', async () => {
    handler = (_r, res) => {
      if (requests.length === 1) {
        return json(res, 400, {
          kind: 'Status',
          reason: 'BadRequest',
          message: 'container "step-a" in pod "p1" is waiting to start: ContainerCreating',
          code: 400,
        });
      }
      if (requests.length === 2) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return res.end('2024-01-01T00:00:01Z hello\n');
      }
      json(res, 404, { kind: 'Status', reason: 'NotFound', code: 404, message: 'pods "p1" not found' });
    };
    const lines = await follow([false]);
    expect(texts(lines)).toEqual(['hello']);
    expect(requests).toHaveLength(3);
  });

  it('resolves a follow promptly when its signal aborts', async () => {
    handler = (_r, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('2024-01-01T00:00:01Z first\n');
    };
    const controller = new AbortController();
    const lines: LogLine[] = [];
    const done = api.followLog(
      { pod: 'p1', container: 'step-a', ended: () => Promise.resolve(false), signal: controller.signal },
      (line) => {
        lines.push(line);
        controller.abort();
      },
    );
    await done;
    expect(texts(lines)).toEqual(['first']);
  });

  it('names the kubeconfig and what is wrong with it', async () => {
    const missing = join(dir, 'nope');
    await expect(createKubeApi({ kubeconfig: missing })).rejects.toThrow(
      `kubeconfig ${missing}: no such file`,
    );
    const broken = join(dir, 'broken');
    await writeFile(broken, 'clusters: [\n  - name: x\n   bad');
    await expect(createKubeApi({ kubeconfig: broken })).rejects.toThrow(
      `kubeconfig ${broken}: not a valid kubeconfig`,
    );
    await expect(createKubeApi({ kubeconfig, context: 'prod' })).rejects.toThrow(
      `kubeconfig ${kubeconfig}: no context named 'prod' (it has: ci)`,
    );
    expect((await createKubeApi({ kubeconfig })).namespace).toBe(NS);
    expect((await createKubeApi({ kubeconfig, namespace: 'other' })).namespace).toBe('other');
  });
});
