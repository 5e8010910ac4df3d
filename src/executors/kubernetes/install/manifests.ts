/**
 * What `slipway manifests` prints for `kubectl apply`: Slipway's server on a cluster, running
 * builds in a build namespace with exactly the rights the executor uses. Pure: no I/O.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPersistentVolumeClaimSpec } from 'kubernetes-models/v1/PersistentVolumeClaimSpec';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { buildNamespaceRules } from './permissions.js';

export interface InstallOptions {
  /** Where the server runs (default `slipway`). */
  namespace?: string;
  /** Where build pods run (default `ci-builds`); may equal `namespace`. */
  buildNamespace?: string;
  /** `postgres://…`: the server is a Deployment. Without it, SQLite on a volume (a StatefulSet). */
  database?: string;
  /** The Slipway image; runs `slipway` from its PATH. */
  image: string;
  /** An Ingress for this host name. */
  host?: string;
  ingressClass?: string;
  /** Size of the data volume (default 10Gi). */
  storage?: string;
  storageClass?: string;
  /** Server replicas: more than one only with PostgreSQL and a shared blob store. */
  replicas?: number;
  /** `s3://bucket/prefix`: logs and artifacts in S3 instead of the data volume. */
  blobs?: string;
}

/** A bad option of `slipway manifests`: the message says which and what is expected. */
export class InstallOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallOptionsError';
  }
}

/** Names of the objects, shared with `slipway doctor` and the README. */
export const INSTALL_NAMES = {
  serviceAccount: 'slipway',
  buildServiceAccount: 'slipway-build',
  role: 'slipway-executor',
  databaseSecret: 'slipway-database',
  /** Created by the operator (see the README): the key secrets are encrypted with. */
  secretKeySecret: 'slipway-secret-key',
  server: 'slipway',
  dataVolume: 'slipway-data',
} as const;

const PORT = 8080;
const USER_ID = 10001;
const DATA_DIR = '/var/lib/slipway';
const DEFAULT_STORAGE = '10Gi';
const LABELS = { 'app.kubernetes.io/name': 'slipway', 'app.kubernetes.io/component': 'server' };
const PART_OF = { 'app.kubernetes.io/part-of': 'slipway' };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/**
 * The objects, in the order `kubectl apply` should create them. Throws
 * {@link InstallOptionsError} for options that cannot work together.
 */
export function installManifests(options: InstallOptions): object[] {
  const o = checked(options);
  const postgres = o.database !== undefined;
  // The data dir holds the SQLite file, the secret key file and (without --blobs) logs and
  // artifacts. It needs a volume unless all of those live elsewhere.
  const dataOnVolume = !postgres || o.blobs === undefined;
  const objects: object[] = [
    namespace(o.namespace, o.namespace === o.buildNamespace ? 'baseline' : 'restricted'),
  ];
  if (o.buildNamespace !== o.namespace) objects.push(namespace(o.buildNamespace, 'baseline'));
  objects.push(
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: INSTALL_NAMES.serviceAccount, namespace: o.namespace, labels: LABELS },
    } satisfies IServiceAccount,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      // In the BUILD namespace: a Role in the server's own namespace grants nothing where the
      // pods are (woodpecker#1696).
      metadata: { name: INSTALL_NAMES.role, namespace: o.buildNamespace, labels: PART_OF },
      rules: buildNamespaceRules(),
    } satisfies IRole,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: INSTALL_NAMES.role, namespace: o.buildNamespace, labels: PART_OF },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: INSTALL_NAMES.role },
      subjects: [{ kind: 'ServiceAccount', name: INSTALL_NAMES.serviceAccount, namespace: o.namespace }],
    } satisfies IRoleBinding,
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      // Build pods run as this account: no binding, and no token in the pod, so a step cannot
      // talk to the API with any identity.
      metadata: { name: INSTALL_NAMES.buildServiceAccount, namespace: o.buildNamespace, labels: PART_OF },
      automountServiceAccountToken: false,
    } satisfies IServiceAccount,
  );
  if (postgres) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: INSTALL_NAMES.databaseSecret, namespace: o.namespace, labels: LABELS },
      type: 'Opaque',
      stringData: { url: o.database! },
    } satisfies ISecret);
  }
  const template = podTemplate(o, postgres, dataOnVolume);
  const claim: IPersistentVolumeClaimSpec = {
    accessModes: ['ReadWriteOnce'],
    ...(o.storageClass !== undefined ? { storageClassName: o.storageClass } : {}),
    resources: { requests: { storage: o.storage } },
  };
  if (postgres) {
    if (dataOnVolume) {
      objects.push({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: INSTALL_NAMES.dataVolume, namespace: o.namespace, labels: LABELS },
        spec: claim,
      } satisfies IPersistentVolumeClaim);
    }
    objects.push({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: INSTALL_NAMES.server, namespace: o.namespace, labels: LABELS },
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: LABELS },
        // A ReadWriteOnce volume cannot be mounted by the new pod while the old one holds it.
        strategy: dataOnVolume ? { type: 'Recreate' } : { type: 'RollingUpdate' },
        template,
      },
    } satisfies IDeployment);
  } else {
    objects.push({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: INSTALL_NAMES.server, namespace: o.namespace, labels: LABELS },
      spec: {
        replicas: 1,
        serviceName: INSTALL_NAMES.server,
        selector: { matchLabels: LABELS },
        template,
        volumeClaimTemplates: [{ metadata: { name: 'data', labels: LABELS }, spec: claim }],
      },
    } satisfies IStatefulSet);
  }
  objects.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: INSTALL_NAMES.server, namespace: o.namespace, labels: LABELS },
    spec: {
      type: 'ClusterIP',
      selector: LABELS,
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    },
  } satisfies IService);
  if (o.host !== undefined) {
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: INSTALL_NAMES.server, namespace: o.namespace, labels: LABELS },
      spec: {
        ...(o.ingressClass !== undefined ? { ingressClassName: o.ingressClass } : {}),
        rules: [
          {
            host: o.host,
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { service: { name: INSTALL_NAMES.server, port: { name: 'http' } } },
                },
              ],
            },
          },
        ],
      },
    } satisfies IIngress);
  }
  return objects;
}

type CheckedOptions = Required<Pick<InstallOptions, 'namespace' | 'buildNamespace' | 'image' | 'storage'>> &
  Pick<InstallOptions, 'database' | 'host' | 'ingressClass' | 'storageClass' | 'blobs'> & {
    replicas: number;
  };

function checked(options: InstallOptions): CheckedOptions {
  const fail = (message: string): never => {
    throw new InstallOptionsError(message);
  };
  const namespace = options.namespace ?? 'slipway';
  const buildNamespace = options.buildNamespace ?? 'ci-builds';
  for (const [flag, value] of [
    ['--namespace', namespace],
    ['--build-namespace', buildNamespace],
  ] as const) {
    if (value.length > 63 || !DNS_LABEL.test(value))
      fail(`${flag} "${value}": expected a namespace name (lower-case letters, digits and -, at most 63)`);
  }
  if (options.image.trim() === '' || /\s/.test(options.image))
    fail(`--image "${options.image}": expected an image reference such as ghcr.io/slipway-ci/slipway:0.1.0`);
  const database = options.database;
  if (database !== undefined && !/^postgres(ql)?:\/\/[^\s]+$/i.test(database)) {
    fail('--database: expected a postgres://… URL (without --database the server keeps SQLite on a volume)');
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1)
    fail(`--replicas "${replicas}": expected a whole number of 1 or more`);
  if (replicas > 1 && database === undefined)
    fail(
      `--replicas ${replicas}: several servers need --database postgres://… (SQLite on a volume cannot be shared)`,
    );
  if (options.blobs !== undefined && !/^s3:\/\/[^\s/]+/.test(options.blobs))
    fail(`--blobs "${options.blobs}": expected s3://bucket/prefix (a directory would be inside one pod)`);
  if (replicas > 1 && options.blobs === undefined)
    fail(`--replicas ${replicas}: replicas must share logs and artifacts: add --blobs s3://bucket/prefix`);
  const storage = options.storage ?? DEFAULT_STORAGE;
  if (!QUANTITY.test(storage)) fail(`--storage "${storage}": expected a size such as 10Gi or 500Mi`);
  const volume = database === undefined || options.blobs === undefined;
  if (!volume && (options.storage !== undefined || options.storageClass !== undefined))
    fail('--storage/--storage-class: with PostgreSQL and --blobs the server keeps no data on a volume');
  if (options.storageClass !== undefined && !DNS_SUBDOMAIN.test(options.storageClass))
    fail(`--storage-class "${options.storageClass}": expected a StorageClass name`);
  if (
    options.host !== undefined &&
    (options.host.length > 253 ||
      !/^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(options.host) ||
      !DNS_SUBDOMAIN.test(options.host.replace(/^\*\./, '')))
  )
    fail(`--host "${options.host}": expected a lower-case DNS name such as ci.example.com`);
  if (options.ingressClass !== undefined) {
    if (options.host === undefined)
      fail('--ingress-class: only with --host (there is no Ingress without it)');
    if (!DNS_SUBDOMAIN.test(options.ingressClass))
      fail(`--ingress-class "${options.ingressClass}": expected an IngressClass name`);
  }
  return {
    namespace,
    buildNamespace,
    image: options.image,
    storage,
    replicas,
    ...(database !== undefined ? { database } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.ingressClass !== undefined ? { ingressClass: options.ingressClass } : {}),
    ...(options.storageClass !== undefined ? { storageClass: options.storageClass } : {}),
    ...(options.blobs !== undefined ? { blobs: options.blobs } : {}),
  };
}

function namespace(name: string, podSecurity: 'baseline' | 'restricted'): INamespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: {
        ...PART_OF,
        // The server's pod passes `restricted`; build pods run the pipeline's images as their
        // own users, so their namespace enforces `baseline` (no privileged, no host access).
        'pod-security.kubernetes.io/enforce': podSecurity,
      },
    },
  };
}

function podTemplate(o: CheckedOptions, postgres: boolean, dataOnVolume: boolean): IPodTemplateSpec {
  const env: IEnvVar[] = [
    // git and the AWS SDK look for a home directory; the root file system is read-only.
    { name: 'HOME', value: '/tmp' },
  ];
  if (postgres) {
    env.push({
      name: 'SLIPWAY_DATABASE',
      valueFrom: { secretKeyRef: { name: INSTALL_NAMES.databaseSecret, key: 'url' } },
    });
  }
  if (o.blobs !== undefined) env.push({ name: 'SLIPWAY_BLOBS', value: o.blobs });
  env.push({
    name: 'SLIPWAY_SECRET_KEY',
    // On a volume the server makes its own key file once; without a volume (or with several
    // replicas) every server must read the same key, so the Secret must exist.
    valueFrom: {
      secretKeyRef: { name: INSTALL_NAMES.secretKeySecret, key: 'key', optional: dataOnVolume },
    },
  });
  const volumes: IVolume[] = [{ name: 'tmp', emptyDir: {} }];
  if (postgres) {
    volumes.push(
      dataOnVolume
        ? { name: 'data', persistentVolumeClaim: { claimName: INSTALL_NAMES.dataVolume } }
        : { name: 'data', emptyDir: {} },
    );
  }
  // (The StatefulSet's `data` volume comes from its volumeClaimTemplate.)
  return {
    metadata: { labels: LABELS },
    spec: {
      serviceAccountName: INSTALL_NAMES.serviceAccount,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: USER_ID,
        runAsGroup: USER_ID,
        fsGroup: USER_ID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'slipway',
          image: o.image,
          command: ['slipway', 'server'],
          args: [
            '--host',
            '0.0.0.0',
            '--port',
            String(PORT),
            '--data-dir',
            DATA_DIR,
            '--executor',
            'kubernetes',
            '--namespace',
            o.buildNamespace,
          ],
          env,
          ports: [{ name: 'http', containerPort: PORT, protocol: 'TCP' }],
          // Migrations run before the server listens: the startup probe gives them 5 minutes
          // before liveness may restart the pod.
          startupProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            periodSeconds: 2,
            failureThreshold: 150,
          },
          livenessProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            periodSeconds: 20,
            failureThreshold: 3,
          },
          readinessProbe: {
            httpGet: { path: '/readyz', port: 'http' },
            periodSeconds: 10,
            failureThreshold: 3,
          },
          resources: {
            requests: { cpu: '250m', memory: '256Mi' },
            limits: { cpu: '2', memory: '1Gi' },
          },
          securityContext: {
            runAsNonRoot: true,
            runAsUser: USER_ID,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          volumeMounts: [
            { name: 'tmp', mountPath: '/tmp' },
            { name: 'data', mountPath: DATA_DIR },
          ],
        },
      ],
      volumes,
    },
  };
}
