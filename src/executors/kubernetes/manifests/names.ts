/**
 * Names and labels of what a build creates. Every name and label value is valid whatever the
 * input (a branch `feature/ÄÖ…` 300 characters long, a project `a/b`, a step key
 * `build/compile & test`): names are DNS-1123 labels (≤ 63, `[a-z0-9-]`, alphanumeric at both
 * ends) with a hash of the full input, so that inputs that sanitize alike still get different
 * names; label values keep a valid input as it is and otherwise become a sanitized prefix plus
 * a hash. The full values go in annotations of the same keys.
 */
import { createHash } from 'node:crypto';

export const LABEL_INSTALLATION = 'slipway.dev/installation';
export const LABEL_PROJECT = 'slipway.dev/project';
export const LABEL_BUILD = 'slipway.dev/build';
export const LABEL_BRANCH = 'slipway.dev/branch';
export const LABEL_STEP = 'slipway.dev/step';

/** Pod annotation: space-separated names of the step containers that must stop. */
export const STOP_ANNOTATION = 'slipway.dev/stop';
/** Where step containers and `hold` see the `slipway-control` downwardAPI volume (file `stop`). */
export const CONTROL_DIR = '/slipway/control';
export const CONTROL_VOLUME = 'slipway-control';
export const WORKSPACE_DIR = '/workspace';
export const WORKSPACE_VOLUME = 'workspace';
export const HOLD_CONTAINER = 'hold';
export const SEED_CONTAINER = 'seed';

/** A DNS-1123 label (container and pod names). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A label value (may be empty). */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The first `length` hex digits of the SHA-256 of `value`. */
export function shortHash(value: string, length: number): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, length);
}

/** Lower case, runs of anything but `[a-z0-9]` to one `-`, at most `max` characters, no `-` at the ends. */
function dnsPart(value: string, max: number): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
}

function joinParts(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('-');
}

/** `slipway-<sanitized build id>-<hash8>`: the build's pod (a DNS-1123 label, ≤ 63). */
export function podName(buildId: string): string {
  return joinParts('slipway', dnsPart(buildId, 46), shortHash(buildId, 8));
}

/** `step-<sanitized key, ≤ 30>-<hash6>-<attempt>`: stable, so a second `startStep` finds the first. */
export function stepContainerName(key: string, attempt: number): string {
  if (!Number.isSafeInteger(attempt) || attempt < 0) {
    throw new RangeError(`a step attempt must be a whole number ≥ 0, not ${attempt}`);
  }
  return joinParts('step', dnsPart(key, 30), shortHash(key, 6), String(attempt));
}

/** `svc-<name>` when the name is a short DNS label already, else `svc-<sanitized>-<hash6>`. */
export function serviceContainerName(name: string): string {
  if (name.length <= 59 && DNS_LABEL.test(name)) return `svc-${name}`;
  return joinParts('svc', dnsPart(name, 50), shortHash(name, 6));
}

/** A valid label value: `value` itself when it is one, else a sanitized prefix and a hash. */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const cleaned = value
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 54)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return joinParts(cleaned, shortHash(value, 8));
}

export interface BuildNames {
  buildId: string;
  project: string;
  branch: string;
}

/** The `slipway.dev/*` labels of everything a build creates (values sanitized). */
export function buildLabels(installation: string, build: BuildNames): Record<string, string> {
  return {
    [LABEL_INSTALLATION]: labelValue(installation),
    [LABEL_PROJECT]: labelValue(build.project),
    [LABEL_BUILD]: labelValue(build.buildId),
    [LABEL_BRANCH]: labelValue(build.branch),
  };
}

/** The same keys as {@link buildLabels} with the full, unsanitized values. */
export function buildAnnotations(installation: string, build: BuildNames): Record<string, string> {
  return {
    [LABEL_INSTALLATION]: installation,
    [LABEL_PROJECT]: build.project,
    [LABEL_BUILD]: build.buildId,
    [LABEL_BRANCH]: build.branch,
  };
}

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** A Secret data key for an environment variable: `<prefix><name>`, or a hash when the name cannot be a key. */
export function secretKey(prefix: string, envName: string): string {
  const key = `${prefix}${envName}`;
  return key.length <= 253 && SECRET_KEY.test(key) && key !== '.' && key !== '..'
    ? key
    : `${prefix}env-${shortHash(envName, 16)}`;
}
