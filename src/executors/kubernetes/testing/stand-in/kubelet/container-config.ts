/**
 * What the kubelet decides before it asks the runtime for a container: the image reference's
 * validity (InvalidImageName), the environment (secretKeyRef / configMapKeyRef / fieldRef, with
 * the real kubelet's messages for CreateContainerConfigError), `$(VAR)` expansion in env values,
 * command and args (Kubernetes does this, so a literal `$$` in a script reaches the shell as `$`),
 * resource quantities, and the `podman run` arguments.
 */
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { Pod } from '../../../kube-api.js';
import type { PodHost } from './types.js';
import { fieldValue } from './volumes.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(${NAME})(?::${TAG})?(?:@${DIGEST})?$`);

/**
 * The kubelet's InvalidImageName message for a reference the distribution grammar rejects
 * (`docker.io/distribution/reference`), or undefined when it parses.
 */
export function invalidImageMessage(image: string): string | undefined {
  const match = REFERENCE.exec(image);
  if (match && (match[1]?.length ?? 0) <= 255) return undefined;
  const detail = REFERENCE.test(image.toLowerCase())
    ? 'invalid reference format: repository name must be lowercase'
    : 'invalid reference format';
  return `Failed to apply default image tag "${image}": couldn't parse image name "${image}": ${detail}`;
}

/**
 * Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the
 * value when NAME is defined and stays as written otherwise; `$$` becomes `$`.
 */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') {
      out += '$';
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close > 0) {
        const name = rest.slice(1, close);
        out += vars.has(name) ? vars.get(name) : `$(${name})`;
        advance = close + 1;
      } else {
        out += '$(';
      }
    } else {
      out += `$${rest[0]}`;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

export type EnvResult = { ok: true; env: Map<string, string> } | { ok: false; message: string };

/** The container's environment as the kubelet builds it (CreateContainerConfigError messages). */
export function resolveEnv(
  pod: Pod,
  container: IContainer,
  host: PodHost,
  hostIP: string | undefined,
): EnvResult {
  const namespace = pod.metadata?.namespace ?? '';
  const env = new Map<string, string>();
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) continue; // secretRef needs a Secret's key list, which PodHost does not give
    const configMap = host.configMap(source.configMapRef.name ?? '');
    if (!configMap) {
      if (source.configMapRef.optional) continue;
      return { ok: false, message: `configmap "${source.configMapRef.name}" not found` };
    }
    for (const [key, value] of Object.entries(configMap.data ?? {}))
      env.set(`${source.prefix ?? ''}${key}`, value);
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (!from) {
      env.set(variable.name, expand(variable.value ?? '', env));
      continue;
    }
    if (from.secretKeyRef) {
      const { name = '', key, optional } = from.secretKeyRef;
      const value = host.secretValue(name, key);
      if (value === undefined) {
        if (optional) continue;
        // PodHost says only "no value": a missing key in an existing Secret reads the same here.
        return { ok: false, message: `secret "${name}" not found` };
      }
      env.set(variable.name, value);
    } else if (from.configMapKeyRef) {
      const { name = '', key, optional } = from.configMapKeyRef;
      const configMap = host.configMap(name);
      const value = configMap?.data?.[key];
      if (value === undefined) {
        if (optional) continue;
        return {
          ok: false,
          message: configMap
            ? `couldn't find key ${key} in ConfigMap ${namespace}/${name}`
            : `configmap "${name}" not found`,
        };
      }
      env.set(variable.name, value);
    } else if (from.fieldRef) {
      env.set(variable.name, fieldValue(pod, from.fieldRef.fieldPath, hostIP) ?? '');
    } else if (from.resourceFieldRef) {
      const limit = container.resources?.limits?.[from.resourceFieldRef.resource.replace(/^limits\./, '')];
      env.set(variable.name, limit === undefined ? '' : String(parseQuantity(String(limit)) ?? ''));
    }
  }
  return { ok: true, env };
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** A Kubernetes resource quantity ("512Mi", "0.5", "500m", "1e9") as a number, or undefined. */
export function parseQuantity(quantity: string): number | undefined {
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?\d+)?$/.exec(
    quantity.trim(),
  );
  if (!match) return undefined;
  const number = Number(match[1]);
  const suffix = match[2] ?? '';
  if (suffix in BINARY) return number * (BINARY[suffix] ?? 1);
  if (suffix in DECIMAL) return number * (DECIMAL[suffix] ?? 1);
  return number * 10 ** Number(suffix.slice(1));
}

/** The memory limit in bytes, or undefined when the container has none. */
export function memoryLimit(container: IContainer): number | undefined {
  const limit = container.resources?.limits?.memory;
  const bytes = limit === undefined ? undefined : parseQuantity(String(limit));
  return bytes === undefined ? undefined : Math.ceil(bytes);
}

/**
 * The pod-level memory limit a kubelet gives the pod's cgroup: the sum of the containers'
 * limits (at least the largest init container's) when every container has one, else none.
 * Ephemeral containers have no resources and run under this limit, so a step over the build's
 * memory is OOM-killed as on a node.
 */
export function podMemoryLimit(pod: Pod): number | undefined {
  const containers = pod.spec?.containers ?? [];
  const limits = containers.map(memoryLimit);
  if (limits.length === 0 || limits.some((limit) => limit === undefined)) return undefined;
  const sum = limits.reduce<number>((total, limit) => total + (limit ?? 0), 0);
  const initMax = Math.max(0, ...(pod.spec?.initContainers ?? []).map((c) => memoryLimit(c) ?? 0));
  return Math.max(sum, initMax);
}

export interface RunInput {
  podmanPod: string;
  podmanName: string;
  labels: Record<string, string>;
  logPath: string;
  container: IContainer;
  env: Map<string, string>;
  /** Host directory by volume name. */
  volumes: ReadonlyMap<string, string>;
  runAsUser: number | undefined;
  /** Ephemeral containers get no resources (the API forbids them). */
  resources: boolean;
}

/** `podman run -d …` for one container, with the command and args as Kubernetes applies them. */
export function runArgs(input: RunInput): string[] {
  const { container } = input;
  const args = ['run', '-d', '--pod', input.podmanPod, '--name', input.podmanName, '--pull', 'never'];
  for (const [key, value] of Object.entries(input.labels)) args.push('--label', `${key}=${value}`);
  args.push('--log-driver', 'k8s-file', '--log-opt', `path=${input.logPath}`);
  if (container.workingDir) args.push('--workdir', container.workingDir);
  for (const [name, value] of input.env) args.push('--env', `${name}=${value}`);
  const user = container.securityContext?.runAsUser ?? input.runAsUser;
  if (user !== undefined) args.push('--user', String(user));
  if (input.resources) {
    const memory = memoryLimit(container);
    // No swap, as on a kubelet: memory+swap equals memory, so the limit is hit, not swapped past.
    if (memory !== undefined) args.push('--memory', String(memory), '--memory-swap', String(memory));
    const cpu = container.resources?.limits?.cpu;
    const cores = cpu === undefined ? undefined : parseQuantity(String(cpu));
    if (cores !== undefined && cores > 0) args.push('--cpus', String(cores));
  }
  for (const mount of container.volumeMounts ?? []) {
    const hostDir = input.volumes.get(mount.name);
    if (!hostDir) continue;
    const source = mount.subPath ? `${hostDir}/${mount.subPath}` : hostDir;
    args.push('--volume', `${source}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`);
  }
  const command = (container.command ?? []).map((part) => expand(part, input.env));
  const commandArgs = (container.args ?? []).map((part) => expand(part, input.env));
  // `command` replaces the image's ENTRYPOINT (and drops its CMD); `args` replaces CMD.
  if (command.length > 0) args.push('--entrypoint', JSON.stringify(command));
  args.push(container.image ?? '', ...commandArgs);
  return args;
}
