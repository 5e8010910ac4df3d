/**
 * The RBAC permissions the kubernetes executor needs in its build namespace: exactly what the
 * {@link KubeApi} calls do, and nothing more. `slipway manifests` grants them with a Role and
 * `slipway doctor` checks them one by one with SelfSubjectAccessReview, so both read this list.
 */
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';
import type { KubeApi } from '../kube-api.js';

/** Verbs on one resource (or subresource) of the core API group. */
export interface Permission {
  resource: string;
  subresource?: string;
  verbs: string[];
}

/**
 * What each KubeApi call needs. Keyed by method so that a method added to KubeApi without an
 * entry here fails to compile: the Role can never fall behind the client. `version` (`/version`
 * is public) and `canI` (SelfSubjectAccessReview, allowed to every authenticated user) need
 * nothing in the namespace.
 */
export const PERMISSIONS_BY_METHOD = {
  createPod: { resource: 'pods', verbs: ['create'] },
  getPod: { resource: 'pods', verbs: ['get'] },
  listPods: { resource: 'pods', verbs: ['list'] },
  watchPods: { resource: 'pods', verbs: ['list', 'watch'] },
  annotatePod: { resource: 'pods', verbs: ['patch'] },
  addEphemeralContainer: { resource: 'pods', subresource: 'ephemeralcontainers', verbs: ['patch'] },
  deletePod: { resource: 'pods', verbs: ['delete'] },
  deletePods: { resource: 'pods', verbs: ['deletecollection'] },
  createSecret: { resource: 'secrets', verbs: ['create'] },
  listSecrets: { resource: 'secrets', verbs: ['list'] },
  setSecretOwner: { resource: 'secrets', verbs: ['patch'] },
  deleteSecrets: { resource: 'secrets', verbs: ['deletecollection'] },
  createConfigMap: { resource: 'configmaps', verbs: ['create'] },
  listConfigMaps: { resource: 'configmaps', verbs: ['list'] },
  setConfigMapOwner: { resource: 'configmaps', verbs: ['patch'] },
  deleteConfigMaps: { resource: 'configmaps', verbs: ['deletecollection'] },
  podWarnings: { resource: 'events', verbs: ['list'] },
  followLog: { resource: 'pods', subresource: 'log', verbs: ['get'] },
} satisfies Record<Exclude<keyof KubeApi, 'namespace' | 'version' | 'canI'>, Permission>;

const VERB_ORDER = ['get', 'list', 'watch', 'create', 'patch', 'delete', 'deletecollection'];

/** `pods`, `pods/log`: how RBAC rules and `kubectl auth can-i` spell a (sub)resource. */
export function resourceName(permission: Pick<Permission, 'resource' | 'subresource'>): string {
  return permission.subresource === undefined
    ? permission.resource
    : `${permission.resource}/${permission.subresource}`;
}

function mergePermissions(entries: readonly Permission[]): Permission[] {
  const merged = new Map<string, Permission>();
  for (const entry of entries) {
    const key = resourceName(entry);
    const seen = merged.get(key);
    const verbs = new Set([...(seen?.verbs ?? []), ...entry.verbs]);
    merged.set(key, {
      resource: entry.resource,
      ...(entry.subresource !== undefined ? { subresource: entry.subresource } : {}),
      verbs: [...verbs].sort((a, b) => VERB_ORDER.indexOf(a) - VERB_ORDER.indexOf(b)),
    });
  }
  return [...merged.values()];
}

/** Every (sub)resource the executor touches in the build namespace, with the union of its verbs. */
export const BUILD_NAMESPACE_PERMISSIONS: readonly Permission[] = mergePermissions(
  Object.values(PERMISSIONS_BY_METHOD),
);

/** The Role's rules: one per (sub)resource, all in the core API group. */
export function buildNamespaceRules(): IPolicyRule[] {
  return BUILD_NAMESPACE_PERMISSIONS.map((p) => ({
    apiGroups: [''],
    resources: [resourceName(p)],
    verbs: [...p.verbs],
  }));
}
