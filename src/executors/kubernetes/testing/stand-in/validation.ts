/**
 * What the API server checks and fills in beyond the OpenAPI schema (`kubeSchemaErrors`):
 * names, labels, container names and volume references, the ephemeral-container rules, and
 * the defaults a stored pod carries. Errors are `path: Type: detail`, worded as the real
 * validators word them.
 */
import { ephemeralContainerErrors, kubeSchemaErrors } from '../schema.js';
import { labelKeyError, labelValueError } from './selectors.js';
import type { KubeObject } from './store.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const MAX_DATA_BYTES = 1024 * 1024;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arrayOf = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);

export function subdomainError(name: string): string | undefined {
  if (name.length <= 253 && DNS_SUBDOMAIN.test(name)) return undefined;
  return `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`;
}

function labelNameError(name: string): string | undefined {
  if (name.length <= 63 && DNS_LABEL.test(name)) return undefined;
  return `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`;
}

/** Every problem of a new object of this kind (schema, unknown fields, names, labels, …). */
export function objectErrors(object: KubeObject): string[] {
  const errors = [...kubeSchemaErrors(object)];
  errors.push(...metadataErrors(object));
  if (object.kind === 'Pod') errors.push(...podErrors(object));
  if (object.kind === 'Secret' || object.kind === 'ConfigMap') errors.push(...dataErrors(object));
  return errors;
}

export function metadataErrors(object: KubeObject): string[] {
  const errors: string[] = [];
  const name = object.metadata.name;
  if (!name) errors.push('metadata.name: Required value: name or generateName is required');
  else {
    const e = subdomainError(name);
    if (e) errors.push(`metadata.name: Invalid value: "${name}": ${e}`);
  }
  for (const [key, value] of Object.entries(object.metadata.labels ?? {})) {
    const ke = labelKeyError(key);
    if (ke) errors.push(`metadata.labels: Invalid value: "${key}": ${ke}`);
    const ve = typeof value === 'string' ? labelValueError(value) : 'must be a string';
    if (ve) errors.push(`metadata.labels: Invalid value: "${String(value)}": ${ve}`);
  }
  return errors;
}

function podErrors(pod: KubeObject): string[] {
  const errors: string[] = [];
  const spec = isObject(pod.spec) ? pod.spec : {};
  const volumes = new Set<string>();
  arrayOf(spec.volumes).forEach((v, i) => {
    const name = String(v.name);
    if (volumes.has(name)) errors.push(`spec.volumes[${i}].name: Duplicate value: "${name}"`);
    volumes.add(name);
  });
  if (spec.ephemeralContainers !== undefined) {
    errors.push('spec.ephemeralContainers: Forbidden: cannot be set on create');
  }
  const names = new Set<string>();
  for (const field of ['initContainers', 'containers'] as const) {
    arrayOf(spec[field]).forEach((c, i) => {
      errors.push(...containerErrors(c, `spec.${field}[${i}]`, names, volumes));
    });
  }
  if (arrayOf(spec.containers).length === 0) errors.push('spec.containers: Required value');
  return errors;
}

function containerErrors(c: Json, path: string, names: Set<string>, volumes: Set<string>): string[] {
  const errors: string[] = [];
  const name = typeof c.name === 'string' ? c.name : '';
  if (!name) errors.push(`${path}.name: Required value`);
  else {
    const e = labelNameError(name);
    if (e) errors.push(`${path}.name: Invalid value: "${name}": ${e}`);
    if (names.has(name)) errors.push(`${path}.name: Duplicate value: "${name}"`);
    names.add(name);
  }
  if (typeof c.image !== 'string' || c.image.trim() === '') errors.push(`${path}.image: Required value`);
  arrayOf(c.volumeMounts).forEach((m, i) => {
    if (!volumes.has(String(m.name))) {
      errors.push(`${path}.volumeMounts[${i}].name: Not found: "${String(m.name)}"`);
    }
  });
  return errors;
}

/**
 * `EphemeralContainerCommon` fields an ephemeral container may set; any other field with a
 * non-zero value is Forbidden (the real validator's allow list).
 */
const EPHEMERAL_ALLOWED = new Set([
  'name',
  'image',
  'command',
  'args',
  'workingDir',
  'env',
  'envFrom',
  'volumeMounts',
  'volumeDevices',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
  'targetContainerName',
]);

/** Go's zero value as JSON decodes it: absent/null, or a struct with no field set. */
function isZero(v: unknown): boolean {
  return v === undefined || v === null || (isObject(v) && Object.keys(v).length === 0);
}

/**
 * The problems of the pod's ephemeral containers after a patch: new ones are validated in full,
 * existing ones may not change (`before` is the list stored before the patch).
 */
export function ephemeralErrors(pod: KubeObject, before: Json[]): string[] {
  const errors: string[] = [];
  const spec = isObject(pod.spec) ? pod.spec : {};
  const after = arrayOf(spec.ephemeralContainers);
  const volumes = new Set(arrayOf(spec.volumes).map((v) => String(v.name)));
  const names = new Set<string>();
  for (const c of [...arrayOf(spec.initContainers), ...arrayOf(spec.containers)]) names.add(String(c.name));
  const regular = new Set(names);
  const old = new Map(before.map((c) => [String(c.name), c]));
  for (const name of old.keys()) {
    if (!after.some((c) => c.name === name)) {
      errors.push(
        `spec.ephemeralContainers: Forbidden: existing ephemeral containers "${name}" may not be removed`,
      );
    }
  }
  after.forEach((c, i) => {
    const path = `spec.ephemeralContainers[${i}]`;
    const name = String(c.name);
    const existing = old.get(name);
    if (existing) {
      if (JSON.stringify(existing) !== JSON.stringify(c)) {
        errors.push(
          `spec.ephemeralContainers: Forbidden: existing ephemeral containers "${name}" may not be changed`,
        );
      }
      names.add(name);
      return;
    }
    errors.push(
      ...ephemeralContainerErrors(c).map((e) =>
        e.startsWith('(root)') ? `${path}${e.slice(6)}` : `${path}.${e}`,
      ),
    );
    errors.push(...containerErrors(c, path, names, volumes));
    for (const [field, value] of Object.entries(c)) {
      if (!EPHEMERAL_ALLOWED.has(field) && !isZero(value)) {
        errors.push(`${path}.${field}: Forbidden: cannot be set for an Ephemeral Container`);
      }
    }
    arrayOf(c.volumeMounts).forEach((m, j) => {
      if (m.subPath !== undefined && m.subPath !== '') {
        errors.push(
          `${path}.volumeMounts[${j}].subPath: Forbidden: cannot be set for an Ephemeral Container`,
        );
      }
    });
    if (typeof c.targetContainerName === 'string' && !regular.has(c.targetContainerName)) {
      errors.push(`${path}.targetContainerName: Not found: "${c.targetContainerName}"`);
    }
  });
  return errors;
}

function dataErrors(object: KubeObject): string[] {
  const errors: string[] = [];
  let bytes = 0;
  const seen = new Set<string>();
  for (const field of ['data', 'binaryData'] as const) {
    const data = object[field];
    if (!isObject(data)) continue;
    for (const [key, value] of Object.entries(data)) {
      if (!DATA_KEY.test(key) || key.length > 253) {
        errors.push(
          `${field}[${key}]: Invalid value: "${key}": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
        );
      }
      if (seen.has(key))
        errors.push(`data[${key}]: Invalid value: "${key}": duplicate of key present in binaryData`);
      seen.add(key);
      const s = typeof value === 'string' ? value : '';
      bytes +=
        object.kind === 'Secret' || field === 'binaryData'
          ? Buffer.from(s, 'base64').length
          : Buffer.byteLength(s);
    }
  }
  if (bytes > MAX_DATA_BYTES) {
    errors.push(
      `${object.kind === 'Secret' ? 'data' : '[]'}: Too long: must have at most ${MAX_DATA_BYTES} bytes`,
    );
  }
  return errors;
}

/** What the API server fills into a container it stores. */
export function defaultContainer(c: Json): void {
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (c.imagePullPolicy === undefined) {
    const image = typeof c.image === 'string' ? c.image : '';
    const tag = image.includes('@') ? 'digest' : /:[^/]+$/.exec(image)?.[0].slice(1);
    c.imagePullPolicy = tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent';
  }
}

/** The defaults a stored pod carries, and its first status. */
export function defaultPod(pod: KubeObject): void {
  const spec: Json = isObject(pod.spec) ? pod.spec : (pod.spec = {});
  for (const c of [...arrayOf(spec.initContainers), ...arrayOf(spec.containers)]) {
    defaultContainer(c);
    c.resources ??= {};
  }
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  if (spec.serviceAccountName !== undefined) spec.serviceAccount ??= spec.serviceAccountName;
  else spec.serviceAccountName = spec.serviceAccount ??= 'default';
  pod.metadata.generation = 1;
  pod.status = { phase: 'Pending', qosClass: qosClass(spec) };
}

function qosClass(spec: Json): string {
  const containers = [...arrayOf(spec.initContainers), ...arrayOf(spec.containers)];
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const r = isObject(c.resources) ? c.resources : {};
    const requests = isObject(r.requests) ? r.requests : {};
    const limits = isObject(r.limits) ? r.limits : {};
    if (Object.keys(requests).length > 0 || Object.keys(limits).length > 0) any = true;
    for (const res of ['cpu', 'memory']) {
      if (limits[res] === undefined) guaranteed = false;
      if (requests[res] !== undefined && requests[res] !== limits[res]) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}
