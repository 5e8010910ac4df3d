/**
 * The Kubernetes executor's options, one set for `run`, `server`, `doctor` and `gc`, and the
 * executor made from them. client-node and the executor load only when Kubernetes is chosen.
 */
import { Option, type Command } from 'commander';
import type { KubernetesExecutor, KubePullPolicy } from '../executors/kubernetes/kubernetes-executor.js';
import type { KubeApi } from '../executors/kubernetes/kube-api.js';
import { parseDuration } from '../pipeline/duration.js';
import { UsageError } from './errors.js';

export interface KubernetesCliOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  pendingTimeout?: string;
  helperImage?: string;
  installation?: string;
  buildCpu?: string;
  buildMemory?: string;
  maxSeedBytes?: string;
  maxCacheRestoreBytes?: string;
}

/** Adds the Kubernetes options to a command (`run`, `server`, `doctor`, `gc`). */
export function withKubernetesOptions(command: Command): Command {
  for (const option of kubernetesOptions()) command.addOption(option);
  return command;
}

export function kubernetesOptions(): Option[] {
  return [
    new Option(
      '--kubeconfig <file>',
      'kubernetes: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)',
    ),
    new Option('--context <name>', 'kubernetes: kubeconfig context (default: its current context)'),
    new Option(
      '--namespace <ns>',
      "kubernetes: namespace of build pods (default: the context's, else default)",
    ),
    new Option(
      '--pending-timeout <duration>',
      'kubernetes: how long a build pod may stay unscheduled or a container not started, e.g. 5m (default 5m; not part of a step timeout)',
    ),
    new Option(
      '--helper-image <image>',
      'kubernetes: image with sh and tar for the seed and hold containers (default busybox:1.36)',
    ),
    new Option(
      '--installation <name>',
      'kubernetes: label slipway.dev/installation of what this Slipway creates and adopts (default: default)',
    ),
    new Option(
      '--build-cpu <quantity>',
      'kubernetes: CPU of each build pod, e.g. 2 or 500m (requests = limits)',
    ),
    new Option(
      '--build-memory <quantity>',
      'kubernetes: memory of each build pod, e.g. 4Gi (requests = limits; over it a step is OOMKilled)',
    ),
    new Option(
      '--max-seed-bytes <bytes>',
      'kubernetes: compressed bytes of a checkout copied into a build pod through the API (ConfigMaps; default 64 MiB)',
    ),
    new Option(
      '--max-cache-restore-bytes <bytes>',
      'kubernetes: compressed bytes of step caches restored into one build pod through the API (default 64 MiB)',
    ),
  ];
}

const PULL: Record<string, KubePullPolicy> = { missing: 'IfNotPresent', always: 'Always', never: 'Never' };
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;

/** The cluster's API as the options say; a missing or broken kubeconfig is a usage error. */
export async function kubeApiFrom(options: KubernetesCliOptions): Promise<KubeApi> {
  const { createKubeApi } = await import('../executors/kubernetes/client/index.js');
  try {
    return await createKubeApi({
      ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
      ...(options.context !== undefined ? { context: options.context } : {}),
      ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** The executor the options describe; a bad option is a usage error naming it. */
export async function kubernetesExecutorFrom(
  options: KubernetesCliOptions & { pull?: string },
): Promise<KubernetesExecutor> {
  const settings = kubernetesSettings(options);
  const api = await kubeApiFrom(options);
  const { KubernetesExecutor } = await import('../executors/kubernetes/kubernetes-executor.js');
  return new KubernetesExecutor({ api, ...settings });
}

/** The options checked and converted, without touching the cluster. */
export function kubernetesSettings(options: KubernetesCliOptions & { pull?: string }) {
  const pendingTimeoutMs =
    options.pendingTimeout === undefined ? undefined : parseDuration(options.pendingTimeout.trim());
  if (options.pendingTimeout !== undefined && (pendingTimeoutMs === undefined || pendingTimeoutMs < 1000)) {
    throw new UsageError(
      `--pending-timeout "${options.pendingTimeout}": expected a duration of 1s or more, e.g. 5m`,
    );
  }
  for (const [flag, value] of [
    ['--build-cpu', options.buildCpu],
    ['--build-memory', options.buildMemory],
  ] as const) {
    if (value !== undefined && !QUANTITY.test(value)) {
      throw new UsageError(`${flag} "${value}": expected a Kubernetes quantity, e.g. 2, 500m, 4Gi`);
    }
  }
  if (options.installation !== undefined && !LABEL_VALUE.test(options.installation)) {
    throw new UsageError(
      `--installation "${options.installation}": expected up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
    );
  }
  const pull = options.pull === undefined ? undefined : PULL[options.pull];
  if (options.pull !== undefined && !pull) {
    throw new UsageError(`--pull "${options.pull}": expected one of ${Object.keys(PULL).join(', ')}`);
  }
  const bytes: { maxSeedBytes?: number; maxCacheRestoreBytes?: number } = {};
  for (const [flag, value, key] of [
    ['--max-seed-bytes', options.maxSeedBytes, 'maxSeedBytes'],
    ['--max-cache-restore-bytes', options.maxCacheRestoreBytes, 'maxCacheRestoreBytes'],
  ] as const) {
    if (value === undefined) continue;
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`${flag} "${value}": expected a whole number of bytes, 1 or more`);
    bytes[key] = n;
  }
  const resources = {
    ...(options.buildCpu !== undefined ? { cpu: options.buildCpu } : {}),
    ...(options.buildMemory !== undefined ? { memory: options.buildMemory } : {}),
  };
  return {
    ...(pendingTimeoutMs !== undefined ? { pendingTimeoutMs } : {}),
    ...(options.helperImage !== undefined ? { helperImage: options.helperImage } : {}),
    ...(options.installation !== undefined ? { installation: options.installation } : {}),
    ...(pull ? { pull } : {}),
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    ...bytes,
  };
}
