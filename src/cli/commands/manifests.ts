import type { Command } from 'commander';
import { stringify } from 'yaml';
import {
  INSTALL_NAMES,
  installManifests,
  InstallOptionsError,
  type InstallOptions,
} from '../../executors/kubernetes/install/manifests.js';
import { EXIT, UsageError } from '../errors.js';
import { packageVersion } from '../main.js';

interface ManifestsOptions {
  namespace: string;
  buildNamespace: string;
  database?: string;
  image?: string;
  host?: string;
  ingressClass?: string;
  storage?: string;
  storageClass?: string;
  replicas?: string;
  blobs?: string;
}

/** `slipway manifests`: the objects that install Slipway on a cluster, as YAML for `kubectl apply -f -`. */
export function registerManifestsCommand(program: Command, exit: (code: number) => void): void {
  program
    .command('manifests')
    .description('print the Kubernetes objects that install the server on a cluster (for kubectl apply -f -)')
    .option('--namespace <name>', "the server's namespace", 'slipway')
    .option('--build-namespace <name>', 'where build pods run (the Role is there)', 'ci-builds')
    .option(
      '--database <url>',
      'postgres://…: a Deployment, the URL in the Secret slipway-database (default: SQLite on a volume, a StatefulSet)',
    )
    .option('--image <ref>', 'the Slipway image (default ghcr.io/slipway-ci/slipway:<this version>)')
    .option('--host <name>', 'an Ingress for this host name')
    .option('--ingress-class <name>', "the Ingress's class (with --host)")
    .option('--storage <size>', 'size of the data volume (SQLite, logs, artifacts)', undefined)
    .option('--storage-class <name>', "the data volume's StorageClass (default: the cluster's default)")
    .option('--replicas <n>', 'server replicas: more than 1 only with PostgreSQL and --blobs s3://…')
    .option('--blobs <s3://bucket/prefix>', 'logs and artifacts in S3 (credentials the usual AWS way)')
    .action((options: ManifestsOptions) => {
      const install: InstallOptions = {
        namespace: options.namespace,
        buildNamespace: options.buildNamespace,
        image: options.image ?? `ghcr.io/slipway-ci/slipway:${packageVersion()}`,
        ...(options.database !== undefined ? { database: options.database } : {}),
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.ingressClass !== undefined ? { ingressClass: options.ingressClass } : {}),
        ...(options.storage !== undefined ? { storage: options.storage } : {}),
        ...(options.storageClass !== undefined ? { storageClass: options.storageClass } : {}),
        ...(options.replicas !== undefined ? { replicas: replicas(options.replicas) } : {}),
        ...(options.blobs !== undefined ? { blobs: options.blobs } : {}),
      };
      let objects: object[];
      try {
        objects = installManifests(install);
      } catch (error) {
        if (error instanceof InstallOptionsError) throw new UsageError(error.message);
        throw error;
      }
      process.stdout.write(objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join(''));
      if (options.database !== undefined && options.blobs !== undefined) {
        // No data volume: the servers must share the key that encrypts secrets.
        process.stderr.write(
          `slipway: before applying, create the secret key the servers share:\n` +
            `  kubectl -n ${options.namespace} create secret generic ${INSTALL_NAMES.secretKeySecret} ` +
            `--from-literal=key="$(openssl rand -base64 32)"\n`,
        );
      }
      exit(EXIT.ok);
    });
}

function replicas(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1)
    throw new UsageError(`--replicas "${value}": expected a whole number of 1 or more`);
  return n;
}
