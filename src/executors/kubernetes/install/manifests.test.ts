import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { describe, expect, it } from 'vitest';
import { kubeSchemaErrors } from '../testing/schema.js';
import { installManifests, InstallOptionsError, type InstallOptions } from './manifests.js';
import { BUILD_NAMESPACE_PERMISSIONS, PERMISSIONS_BY_METHOD } from './permissions.js';

const IMAGE = 'ghcr.io/slipway-ci/slipway:0.1.0';
const DATABASE = 'postgres://slipway:s3cr3t-pw@db.example:5432/slipway';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

const objects = (options: Partial<InstallOptions>) =>
  installManifests({ image: IMAGE, ...options }) as K8sObject[];
const find = (list: K8sObject[], kind: string, name?: string) =>
  list.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

const VARIANTS: Record<string, Partial<InstallOptions>> = {
  'SQLite (StatefulSet)': {},
  'SQLite with an Ingress and a storage class': {
    host: 'ci.example.com',
    ingressClass: 'nginx',
    storage: '20Gi',
    storageClass: 'fast-ssd',
  },
  'PostgreSQL (Deployment with a data volume)': { database: DATABASE },
  'PostgreSQL, 3 replicas, S3 blobs': {
    database: DATABASE,
    replicas: 3,
    blobs: 's3://ci-logs/slipway',
    host: 'ci.example.com',
  },
  'one namespace for server and builds': { namespace: 'ci', buildNamespace: 'ci' },
};

describe('installManifests', () => {
  for (const [name, options] of Object.entries(VARIANTS)) {
    it(`${name}: every object passes the offline schema check (kubernetes-models 1.34 + unknown fields)`, () => {
      const list = objects(options);
      expect(list.length).toBeGreaterThan(5);
      for (const object of list) expect(kubeSchemaErrors(object), object.kind).toEqual([]);
    });
  }

  it('puts the Role and its binding in the build namespace, bound to the server SA of the server namespace (woodpecker#1696)', () => {
    const list = objects({ namespace: 'slipway', buildNamespace: 'ci-builds' });
    const [role] = find(list, 'Role');
    const [binding] = find(list, 'RoleBinding');
    expect(find(list, 'Role')).toHaveLength(1);
    expect(role!.metadata.namespace).toBe('ci-builds');
    expect(binding!.metadata.namespace).toBe('ci-builds');
    expect(binding!.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role!.metadata.name,
    });
    expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'slipway', namespace: 'slipway' }]);
    const [serverSa] = find(list, 'ServiceAccount', 'slipway');
    expect(serverSa!.metadata.namespace).toBe('slipway');
    const server = [...find(list, 'StatefulSet'), ...find(list, 'Deployment')];
    expect(server).toHaveLength(1);
    const spec = (server[0] as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec
      .template.spec;
    expect(spec.serviceAccountName).toBe('slipway');
    expect(server[0]!.metadata.namespace).toBe('slipway');
    // Both namespaces are created.
    expect(find(list, 'Namespace').map((n) => n.metadata.name)).toEqual(['slipway', 'ci-builds']);
  });

  it('grants exactly BUILD_NAMESPACE_PERMISSIONS, one rule per (sub)resource in the core group', () => {
    const [role] = find(objects({}), 'Role');
    const rules = role!.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}`)));
    const expected = Object.values(PERMISSIONS_BY_METHOD).flatMap((p) =>
      p.verbs.map((v) => `${v} ${p.resource}${'subresource' in p ? `/${p.subresource}` : ''}`),
    );
    expect(new Set(granted)).toEqual(new Set(expected));
    expect(granted).toHaveLength(new Set(granted).size);
    expect(rules.every((r) => r.apiGroups.length === 1 && r.apiGroups[0] === '')).toBe(true);
    expect(rules.map((r) => r.resources[0]).sort()).toEqual(
      ['configmaps', 'events', 'pods', 'pods/ephemeralcontainers', 'pods/log', 'secrets'].sort(),
    );
    expect(BUILD_NAMESPACE_PERMISSIONS.find((p) => p.resource === 'pods' && !p.subresource)?.verbs).toEqual([
      'get',
      'list',
      'watch',
      'create',
      'patch',
      'delete',
      'deletecollection',
    ]);
  });

  it('gives build pods their own ServiceAccount with no token and no binding', () => {
    const list = objects({});
    const [build] = find(list, 'ServiceAccount', 'slipway-build');
    expect(build!.metadata.namespace).toBe('ci-builds');
    expect(build!.automountServiceAccountToken).toBe(false);
    const bindings = list.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
    for (const b of bindings) {
      expect(JSON.stringify(b.subjects)).not.toContain('slipway-build');
    }
  });

  it('keeps the database URL in the Secret only, read by secretKeyRef', () => {
    const list = objects({ database: DATABASE, host: 'ci.example.com' });
    const holders = list.filter((o) => JSON.stringify(o).includes('s3cr3t-pw'));
    expect(holders.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['Secret slipway-database']);
    expect(holders[0]!.stringData).toEqual({ url: DATABASE });
    const [deployment] = find(list, 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { env: unknown[] }[] } } };
    }[];
    expect(deployment!.spec.template.spec.containers[0]!.env).toContainEqual({
      name: 'SLIPWAY_DATABASE',
      valueFrom: { secretKeyRef: { name: 'slipway-database', key: 'url' } },
    });
    expect(JSON.stringify(list).match(/db\.example/g)).toHaveLength(1);
  });

  it('runs the server hardened: non-root, read-only root with /tmp on an emptyDir, no capabilities, probes on /healthz and /readyz', () => {
    for (const options of [{}, { database: DATABASE }]) {
      const list = objects(options);
      const [server] = [...find(list, 'StatefulSet'), ...find(list, 'Deployment')] as unknown as (
        IStatefulSet | IDeployment
      )[];
      const pod = server!.spec!.template.spec!;
      const c = pod.containers[0]!;
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 10001,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toEqual({});
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(c.resources?.requests).toBeDefined();
      expect(c.resources?.limits).toBeDefined();
      expect(c.args).toEqual(
        expect.arrayContaining(['--executor', 'kubernetes', '--namespace', 'ci-builds']),
      );
    }
  });

  it('SQLite: a StatefulSet of one with a volumeClaimTemplate; PostgreSQL: a Deployment', () => {
    const sqlite = objects({ storage: '5Gi', storageClass: 'standard' });
    expect(find(sqlite, 'Deployment')).toHaveLength(0);
    const [set] = find(sqlite, 'StatefulSet') as unknown as {
      spec: { replicas: number; volumeClaimTemplates: { spec: Record<string, unknown> }[] };
    }[];
    expect(set!.spec.replicas).toBe(1);
    expect(set!.spec.volumeClaimTemplates[0]!.spec).toMatchObject({
      storageClassName: 'standard',
      resources: { requests: { storage: '5Gi' } },
    });
    const pg = objects({ database: DATABASE, replicas: 2, blobs: 's3://b/p' });
    expect(find(pg, 'StatefulSet')).toHaveLength(0);
    expect((find(pg, 'Deployment')[0] as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect(find(pg, 'PersistentVolumeClaim')).toHaveLength(0);
    expect(find(objects({ database: DATABASE }), 'PersistentVolumeClaim')).toHaveLength(1);
    expect(find(objects({}), 'Ingress')).toHaveLength(0);
    expect(find(objects({ host: 'ci.example.com' }), 'Ingress')).toHaveLength(1);
  });

  it.each([
    [
      { replicas: 2 },
      /--replicas 2: several servers need --database postgres:\/\/… \(SQLite on a volume cannot be shared\)/,
    ],
    [{ replicas: 2, database: DATABASE }, /--blobs s3:\/\//],
    [{ replicas: 0 }, /--replicas "0": expected a whole number/],
    [{ database: 'sqlite:/data/x.db' }, /--database: expected a postgres:\/\/… URL/],
    [{ namespace: 'Slipway_NS' }, /--namespace "Slipway_NS": expected a namespace name/],
    [{ buildNamespace: '' }, /--build-namespace "": expected a namespace name/],
    [{ storage: 'ten gigs' }, /--storage "ten gigs": expected a size/],
    [{ ingressClass: 'nginx' }, /--ingress-class: only with --host/],
    [{ host: 'https://ci.example.com' }, /--host "https:\/\/ci.example.com": expected a lower-case DNS name/],
    [{ blobs: '/srv/blobs' }, /--blobs "\/srv\/blobs": expected s3:\/\/bucket\/prefix/],
    [{ image: 'not an image' }, /--image "not an image"/],
  ] as [Partial<InstallOptions>, RegExp][])('refuses %j with a clear error', (options, message) => {
    expect(() => objects(options)).toThrow(InstallOptionsError);
    expect(() => objects(options)).toThrow(message);
  });
});
