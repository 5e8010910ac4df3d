/**
 * `slipway doctor`'s kubernetes section: can this kubeconfig run builds, and if not, exactly
 * which RBAC verbs are missing and what grants them.
 */
import { ISOLATION, type ExecutorAvailability } from '../../docker/engine.js';
import type { KubeApiOptions } from '../client/index.js';
import { KubeApiError, type KubeApi } from '../kube-api.js';
import { INSTALL_NAMES } from './manifests.js';
import { BUILD_NAMESPACE_PERMISSIONS, resourceName } from './permissions.js';

/** What the kubernetes executor isolates a build from, as `slipway doctor` says it. */
export const KUBERNETES_ISOLATION = ISOLATION.kubernetes;

export interface KubernetesDoctorOptions {
  /** The cluster's address from the kubeconfig (`loadKubeConfig().server`). */
  cluster: string;
}

/**
 * Checks the cluster answers and that every permission of {@link BUILD_NAMESPACE_PERMISSIONS}
 * is granted in `api.namespace` (SelfSubjectAccessReview per verb). Never throws: an
 * unreachable API or a failed check is a line of the report.
 */
export async function kubernetesDoctorReport(
  api: KubeApi,
  options: KubernetesDoctorOptions,
): Promise<ExecutorAvailability> {
  const report = (usable: boolean, detail: string): ExecutorAvailability => ({
    name: 'kubernetes',
    usable,
    detail,
    isolation: KUBERNETES_ISOLATION,
  });
  let version: string;
  try {
    version = await api.version();
  } catch (error) {
    return report(false, `no answer from the cluster at ${options.cluster}: ${reason(error)}`);
  }
  const where = `Kubernetes ${version || '(version unknown)'} at ${options.cluster}, namespace ${api.namespace}`;
  const checks = BUILD_NAMESPACE_PERMISSIONS.flatMap((p) =>
    p.verbs.map((verb) => ({ what: `${resourceName(p)} ${verb}`, verb, p })),
  );
  let answers: boolean[];
  try {
    answers = await Promise.all(checks.map((c) => api.canI(c.verb, c.p.resource, c.p.subresource)));
  } catch (error) {
    return report(false, `${where}\ncannot check permissions (SelfSubjectAccessReview): ${reason(error)}`);
  }
  const missing = checks.filter((_, i) => !answers[i]).map((c) => c.what);
  if (missing.length === 0) {
    return report(true, `${where}: all ${checks.length} permissions the executor uses are granted`);
  }
  return report(
    false,
    `${where}\nmissing: ${missing.join(', ')}\n` +
      `grant them: slipway manifests --build-namespace ${api.namespace} | kubectl apply -f -\n` +
      `(Slipway on the cluster; from elsewhere, bind that Role to your user: kubectl -n ${api.namespace} ` +
      `create rolebinding slipway-you --role ${INSTALL_NAMES.role} --user <you>)`,
  );
}

/**
 * The kubernetes section for `slipway doctor` from kubeconfig options (as `createKubeApi` takes
 * them): a missing or broken kubeconfig is a line of the report too. Loads client-node only
 * when called.
 */
export async function kubernetesDoctorFromConfig(options: KubeApiOptions): Promise<ExecutorAvailability> {
  const { createKubeApi, loadKubeConfig } = await import('../client/index.js');
  let api: KubeApi;
  let cluster: string;
  try {
    cluster = loadKubeConfig({
      ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
      ...(options.context ? { context: options.context } : {}),
    }).server;
    api = await createKubeApi(options);
  } catch (error) {
    return { name: 'kubernetes', usable: false, detail: reason(error), isolation: KUBERNETES_ISOLATION };
  }
  return kubernetesDoctorReport(api, { cluster });
}

function reason(error: unknown): string {
  if (error instanceof KubeApiError) {
    if (error.status === 401) return `not authenticated (401): ${error.message}`;
    if (error.status === 403) return `forbidden (403): ${error.message}`;
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
