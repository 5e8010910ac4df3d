import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi } from '../client/index.js';
import { kubernetesDoctorFromConfig, kubernetesDoctorReport } from './doctor.js';
import { BUILD_NAMESPACE_PERMISSIONS } from './permissions.js';

/**
 * A scripted stand-in for an API server (no Kubernetes API server can run on these machines):
 * `/version`, and SelfSubjectAccessReview answering allowed unless `verb resource[/sub]` is in
 * `denied`. Each review's attributes are recorded.
 */
function scriptedStandIn(denied: Set<string>) {
  const reviews: Record<string, unknown>[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      response.setHeader('content-type', 'application/json');
      if (request.method === 'GET' && request.url === '/version') {
        response.end(JSON.stringify({ major: '1', minor: '34', gitVersion: 'v1.34.1' }));
        return;
      }
      if (
        request.method === 'POST' &&
        request.url === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews'
      ) {
        const review = JSON.parse(body) as { spec: { resourceAttributes: Record<string, string> } };
        const a = review.spec.resourceAttributes;
        reviews.push(a);
        const what = `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}`;
        response.statusCode = 201;
        response.end(JSON.stringify({ ...review, status: { allowed: !denied.has(what) } }));
        return;
      }
      response.statusCode = 404;
      response.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 }));
    });
  });
  return { server, reviews };
}

async function kubeconfig(dir: string, server: string): Promise<string> {
  const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  await writeFile(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'ci-builds' } }],
      'current-context': 'x',
    }),
  );
  return path;
}

describe('kubernetesDoctorReport (scripted stand-in API server, real client)', () => {
  const denied = new Set<string>();
  const standIn = scriptedStandIn(denied);
  let url = '';
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-doctor-'));
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(standIn.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => standIn.server.close(() => resolve()));
  });

  it('scripted stand-in: all granted → usable, version, address and namespace; every permission asked in the namespace', async () => {
    denied.clear();
    standIn.reviews.length = 0;
    const api = await createKubeApi({ kubeconfig: await kubeconfig(dir, url) });
    const report = await kubernetesDoctorReport(api, { cluster: url });
    const total = BUILD_NAMESPACE_PERMISSIONS.reduce((n, p) => n + p.verbs.length, 0);
    expect(report).toMatchObject({ name: 'kubernetes', usable: true });
    expect(report.detail).toBe(
      `Kubernetes v1.34.1 at ${url}, namespace ci-builds: all ${total} permissions the executor uses are granted`,
    );
    expect(standIn.reviews).toHaveLength(total);
    expect(standIn.reviews.every((r) => r.namespace === 'ci-builds' && r.group === '')).toBe(true);
    expect(standIn.reviews).toContainEqual({
      namespace: 'ci-builds',
      verb: 'patch',
      group: '',
      resource: 'pods',
      subresource: 'ephemeralcontainers',
    });
  });

  it('scripted stand-in: lists exactly the missing verbs and what to apply', async () => {
    denied.clear();
    denied.add('patch pods/ephemeralcontainers');
    denied.add('list events');
    const api = await createKubeApi({ kubeconfig: await kubeconfig(dir, url) });
    const report = await kubernetesDoctorReport(api, { cluster: url });
    expect(report.usable).toBe(false);
    const lines = report.detail.split('\n');
    expect(lines[0]).toBe(`Kubernetes v1.34.1 at ${url}, namespace ci-builds`);
    expect(lines[1]).toBe('missing: pods/ephemeralcontainers patch, events list');
    expect(lines[2]).toBe('grant them: slipway manifests --build-namespace ci-builds | kubectl apply -f -');
  });

  it('an API that does not answer is one clear line, not a stack', async () => {
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const api = await createKubeApi({ kubeconfig: await kubeconfig(dir, deadUrl) });
    const report = await kubernetesDoctorReport(api, { cluster: deadUrl });
    expect(report.usable).toBe(false);
    expect(report.detail).toMatch(new RegExp(`^no answer from the cluster at ${deadUrl}: .*ECONNREFUSED`));
    expect(report.detail).not.toContain('\n');
    expect(report.detail).not.toMatch(/\bat .*\.(js|ts):\d+/);
  });

  it('scripted stand-in, from the kubeconfig: the address comes from the file; a missing file is one line', async () => {
    denied.clear();
    const ok = await kubernetesDoctorFromConfig({ kubeconfig: await kubeconfig(dir, url) });
    expect(ok.usable).toBe(true);
    expect(ok.detail).toContain(`at ${url}, namespace ci-builds`);
    const missing = await kubernetesDoctorFromConfig({ kubeconfig: join(dir, 'no-such-kubeconfig') });
    expect(missing.usable).toBe(false);
    expect(missing.detail).toContain('no-such-kubeconfig');
    expect(missing.detail).not.toContain('\n');
  });
});
