/**
 * Offline schema check for every object Slipway generates or the stand-in API server accepts.
 *
 * Two checks, because neither is enough alone:
 * - the `kubernetes-models` 4.5.1 validators (the official OpenAPI schemas of Kubernetes 1.34,
 *   compiled to ajv): types, required fields, enums, formats. They allow unknown fields
 *   (the OpenAPI schemas have no `additionalProperties: false`), so a misspelt field would pass,
 *   and a real API server would silently drop it (or reject it with `fieldValidation=Strict`);
 * - a walk of the object against `@kubernetes/client-node`'s models (`getAttributeTypeMap()`
 *   lists every known field of every type, recursively) that reports every unknown field.
 *   Free-form maps (`labels`, `annotations`, `data`, `binaryData`, resource quantities, any
 *   `{[key]: string}`) are not walked; maps of models (`properties` of a CRD schema) are.
 *
 * Test support only: `kubernetes-models` is a devDependency.
 */
import * as client from '@kubernetes/client-node';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { SelfSubjectAccessReview } from 'kubernetes-models/authorization.k8s.io/v1/SelfSubjectAccessReview';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { EphemeralContainer } from 'kubernetes-models/v1/EphemeralContainer';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

/** A kubernetes-models class: construct, then `validate()` throws with ajv's errors. */
type ModelClass = new (data: never) => { validate(): void };

/** A client-node model: the list of its fields (`baseName` is the JSON name) and their types. */
interface AttributeTypeMap {
  getAttributeTypeMap(): { name: string; baseName: string; type: string }[];
}

/** `apiVersion/kind` → the validator, and the client-node model the unknown-field walk uses. */
const KINDS: Record<string, { model: ModelClass; type: string }> = {};
for (const [model, type] of [
  [Pod, 'V1Pod'],
  [Secret, 'V1Secret'],
  [ConfigMap, 'V1ConfigMap'],
  [Namespace, 'V1Namespace'],
  [ServiceAccount, 'V1ServiceAccount'],
  [Service, 'V1Service'],
  [PersistentVolumeClaim, 'V1PersistentVolumeClaim'],
  [Role, 'V1Role'],
  [RoleBinding, 'V1RoleBinding'],
  [ClusterRole, 'V1ClusterRole'],
  [ClusterRoleBinding, 'V1ClusterRoleBinding'],
  [Deployment, 'V1Deployment'],
  [StatefulSet, 'V1StatefulSet'],
  [Ingress, 'V1Ingress'],
  [SelfSubjectAccessReview, 'V1SelfSubjectAccessReview'],
  [CustomResourceDefinition, 'V1CustomResourceDefinition'],
] as const) {
  KINDS[`${model.apiVersion}/${model.kind}`] = { model, type };
}

/** The kinds {@link kubeSchemaErrors} knows, as `apiVersion/kind`. */
export const KNOWN_KINDS: readonly string[] = Object.keys(KINDS);

/**
 * Every problem with a Kubernetes object, each naming the field path
 * (`spec.containers[1].imagePullPolicyy: unknown field`); empty when it is valid.
 */
export function kubeSchemaErrors(object: unknown): string[] {
  if (!isPlainObject(object)) return [`(root): must be an object, not ${describe(object)}`];
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    return ['(root): apiVersion and kind must be strings'];
  }
  const known = KINDS[`${apiVersion}/${kind}`];
  if (!known) {
    return [`(root): unknown kind ${apiVersion}/${kind} (known: ${KNOWN_KINDS.join(', ')})`];
  }
  return [...validatorErrors(known.model, object), ...unknownFields(object, known.type, '')];
}

/** {@link kubeSchemaErrors} for one ephemeral container (not an API object of its own). */
export function ephemeralContainerErrors(c: unknown): string[] {
  if (!isPlainObject(c)) return [`(root): must be an object, not ${describe(c)}`];
  return [...validatorErrors(EphemeralContainer, c), ...unknownFields(c, 'V1EphemeralContainer', '')];
}

/** Throws one error listing every problem of the object (see {@link kubeSchemaErrors}). */
export function assertKubeValid(object: unknown): void {
  const errors = kubeSchemaErrors(object);
  if (errors.length === 0) return;
  const o = isPlainObject(object) ? object : {};
  const meta = isPlainObject(o.metadata) ? o.metadata : {};
  const what = `${typeof o.kind === 'string' ? o.kind : 'object'} ${typeof meta.name === 'string' ? meta.name : '(no name)'}`;
  throw new Error(`${what} is not valid:\n  ${errors.join('\n  ')}`);
}

/** The shape of ajv's errors as kubernetes-models' `ValidationError.errors` carries them. */
interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function validatorErrors(model: ModelClass, object: Record<string, unknown>): string[] {
  try {
    new model(structuredClone(object) as never).validate();
    return [];
  } catch (error) {
    const list = (error as { errors?: AjvError[] }).errors;
    if (!Array.isArray(list)) return [`(root): ${(error as Error).message}`];
    return list.map((e) => {
      const path = pointerToPath(e.instancePath);
      if (e.keyword === 'required') {
        return `${join(path, String(e.params.missingProperty))}: required field missing`;
      }
      const allowed = e.keyword === 'enum' ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
      return `${path || '(root)'}: ${e.message ?? e.keyword}${allowed}`;
    });
  }
}

const SCALARS = new Set([
  'string',
  'number',
  'boolean',
  'Date',
  'V1MicroTime',
  'IntOrString',
  'any',
  'object',
]);

function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined || SCALARS.has(type)) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    // A non-array here is a type error the validator reports.
    if (!Array.isArray(value)) return [];
    return value.flatMap((item, i) => unknownFields(item, array[1]!, `${path}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (!isPlainObject(value) || SCALARS.has(map[1]!)) return [];
    return Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, join(path, k)));
  }
  const model = (client as unknown as Record<string, AttributeTypeMap | undefined>)[type];
  if (typeof model?.getAttributeTypeMap !== 'function') {
    // A client-node type this walk does not know would hide unknown fields: fail loudly.
    return [`${path || '(root)'}: the schema check does not know the type ${type}`];
  }
  if (!isPlainObject(value)) return [];
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const fieldType = fields.get(k);
    const fieldPath = join(path, k);
    if (fieldType === undefined) return [`${fieldPath}: unknown field (in ${type})`];
    return unknownFields(v, fieldType, fieldPath);
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** `/spec/containers/0/name` → `spec.containers[0].name`. */
function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(part) ? `${path}[${part}]` : join(path, part);
  }
  return path;
}

function join(path: string, field: string): string {
  if (!/^[A-Za-z_$][\w$-]*$/.test(field)) return mapKey(path, field);
  return path ? `${path}.${field}` : field;
}

function mapKey(path: string, key: string): string {
  return `${path}[${JSON.stringify(key)}]`;
}
