/**
 * The {@link KubeApi} on `@kubernetes/client-node` 1.4: kubeconfig discovery as kubectl does
 * it, the KubeConfig's credentials (tokens, client certificates, exec plugins), and requests
 * that always end (a timeout on each call, watchdogs on watches and log streams).
 */
import type { KubeApi } from '../kube-api.js';
import { Transport } from './http.js';
import { ClientNodeKubeApi } from './kube-client.js';
import { loadKubeConfig } from './kubeconfig.js';

export interface KubeApiOptions {
  /** A kubeconfig file; else `KUBECONFIG`, else `~/.kube/config`, else the pod's service account. */
  kubeconfig?: string;
  /** A context of the kubeconfig instead of its current one. */
  context?: string;
  /** Else the context's namespace, else `default`. */
  namespace?: string;
  /** Bound on each request (to the end of its answer; to the headers of watches and logs). Default 30 s. */
  requestTimeoutMs?: number;
  /** A log follow stream quiet this long is closed and resumed. Default 60 s. */
  logIdleMs?: number;
}

/** Rejects with a plain `Error` naming the kubeconfig and what is wrong with it. */
export async function createKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const loaded = loadKubeConfig({
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
  });
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const namespace = options.namespace || loaded.namespace || 'default';
  const transport = new Transport(loaded.kc, loaded.server, requestTimeoutMs);
  return Promise.resolve(
    new ClientNodeKubeApi(namespace, loaded.kc, transport, {
      requestTimeoutMs,
      logIdleMs: options.logIdleMs ?? 60_000,
    }),
  );
}

export { loadKubeConfig } from './kubeconfig.js';
export { KubeApiError } from '../kube-api.js';
