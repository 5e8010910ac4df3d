/** {@link KubeApi} on raw requests (see http.ts) and client-node's `Watch` (see watch.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../kube-api.js';
import type {
  ConfigMap,
  EphemeralContainer,
  FollowLogOptions,
  KubeApi,
  KubeEvent,
  LogLine,
  OwnerReference,
  Pod,
  PodChange,
  Secret,
} from '../kube-api.js';
import type { Transport } from './http.js';
import { followLog } from './log.js';
import { watchPods } from './watch.js';

const MERGE_PATCH = 'application/merge-patch+json';
const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

interface List<T> {
  metadata?: { resourceVersion?: string };
  items?: T[];
}

export interface ClientSettings {
  requestTimeoutMs: number;
  /** See `LogContext.idleMs`. */
  logIdleMs: number;
}

export class ClientNodeKubeApi implements KubeApi {
  constructor(
    readonly namespace: string,
    private readonly kc: KubeConfig,
    private readonly transport: Transport,
    private readonly settings: ClientSettings,
  ) {}

  async version(): Promise<string> {
    const info = await this.transport.json<{ gitVersion?: string }>('GET', '/version');
    return info?.gitVersion ?? '';
  }

  createPod(pod: Pod): Promise<Pod> {
    return this.transport.json('POST', this.path('pods'), { body: pod });
  }

  async getPod(name: string): Promise<Pod | undefined> {
    try {
      return await this.transport.json<Pod>('GET', this.path('pods', name));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  listPods(labelSelector: string, signal?: AbortSignal): Promise<{ items: Pod[]; resourceVersion: string }> {
    return this.list<Pod>('pods', 'Pod', labelSelector, signal);
  }

  watchPods(
    labelSelector: string,
    onChange: (change: PodChange) => void,
    signal: AbortSignal,
    options?: { watchdogMs?: number },
  ): Promise<void> {
    const context = {
      kc: this.kc,
      namespace: this.namespace,
      list: (selector: string, listSignal: AbortSignal) => this.listPods(selector, listSignal),
    };
    return watchPods(context, labelSelector, onChange, signal, options?.watchdogMs ?? 90_000);
  }

  annotatePod(name: string, annotations: Record<string, string | null>): Promise<Pod> {
    return this.transport.json('PATCH', this.path('pods', name), {
      body: { metadata: { annotations } },
      contentType: MERGE_PATCH,
    });
  }

  addEphemeralContainer(name: string, container: EphemeralContainer): Promise<Pod> {
    return this.transport.json('PATCH', `${this.path('pods', name)}/ephemeralcontainers`, {
      body: { spec: { ephemeralContainers: [container] } },
      contentType: STRATEGIC_MERGE_PATCH,
    });
  }

  async deletePod(name: string, gracePeriodSeconds?: number): Promise<void> {
    try {
      await this.transport.json('DELETE', this.path('pods', name), {
        query: { gracePeriodSeconds, propagationPolicy: 'Background' },
      });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return;
      throw error;
    }
  }

  async deletePods(labelSelector: string): Promise<void> {
    await this.deleteCollection('pods', labelSelector);
  }

  createSecret(secret: Secret): Promise<Secret> {
    return this.transport.json('POST', this.path('secrets'), { body: secret });
  }

  async listSecrets(labelSelector: string): Promise<Secret[]> {
    return (await this.list<Secret>('secrets', 'Secret', labelSelector)).items;
  }

  async setSecretOwner(name: string, owner: OwnerReference): Promise<void> {
    await this.setOwner('secrets', name, owner);
  }

  async deleteSecrets(labelSelector: string): Promise<void> {
    await this.deleteCollection('secrets', labelSelector);
  }

  createConfigMap(configMap: ConfigMap): Promise<ConfigMap> {
    return this.transport.json('POST', this.path('configmaps'), { body: configMap });
  }

  async listConfigMaps(labelSelector: string): Promise<ConfigMap[]> {
    return (await this.list<ConfigMap>('configmaps', 'ConfigMap', labelSelector)).items;
  }

  async setConfigMapOwner(name: string, owner: OwnerReference): Promise<void> {
    await this.setOwner('configmaps', name, owner);
  }

  async deleteConfigMaps(labelSelector: string): Promise<void> {
    await this.deleteCollection('configmaps', labelSelector);
  }

  async podWarnings(pod: string): Promise<KubeEvent[]> {
    const list = await this.transport.json<List<KubeEvent>>('GET', this.path('events'), {
      query: { fieldSelector: `involvedObject.name=${pod},type=Warning` },
    });
    const when = (event: KubeEvent): string =>
      String(
        event.lastTimestamp ??
          event.eventTime ??
          event.firstTimestamp ??
          event.metadata?.creationTimestamp ??
          '',
      );
    // Events without any time sort first; the sort is stable for ties.
    return [...(list?.items ?? [])].sort((a, b) => (Date.parse(when(a)) || 0) - (Date.parse(when(b)) || 0));
  }

  followLog(options: FollowLogOptions, onLine: (line: LogLine) => void): Promise<void> {
    return followLog(
      {
        transport: this.transport,
        namespace: this.namespace,
        requestTimeoutMs: this.settings.requestTimeoutMs,
        idleMs: this.settings.logIdleMs,
      },
      options,
      onLine,
    );
  }

  async canI(verb: string, resource: string, subresource?: string): Promise<boolean> {
    // `kubectl auth can-i` spelling: `builds.slipway.dev` is resource `builds` of group `slipway.dev`.
    const dot = resource.indexOf('.');
    const review = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {
        resourceAttributes: {
          namespace: this.namespace,
          verb,
          group: dot === -1 ? '' : resource.slice(dot + 1),
          resource: dot === -1 ? resource : resource.slice(0, dot),
          ...(subresource ? { subresource } : {}),
        },
      },
    };
    const answer = await this.transport.json<{ status?: { allowed?: boolean } }>(
      'POST',
      '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      { body: review },
    );
    return answer?.status?.allowed === true;
  }

  private path(resource: string, name?: string): string {
    const base = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/${resource}`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  private async list<T extends object>(
    resource: string,
    kind: string,
    labelSelector: string,
    signal?: AbortSignal,
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const list = await this.transport.json<List<T>>('GET', this.path(resource), {
      query: { labelSelector: labelSelector || undefined },
      ...(signal ? { signal } : {}),
    });
    // List items come without apiVersion and kind; the types (and watch events) have them.
    const items = (list?.items ?? []).map((item) => ({ apiVersion: 'v1', kind, ...item }));
    return { items, resourceVersion: list?.metadata?.resourceVersion ?? '' };
  }

  private async setOwner(resource: string, name: string, owner: OwnerReference): Promise<void> {
    await this.transport.json('PATCH', this.path(resource, name), {
      body: { metadata: { ownerReferences: [owner] } },
      contentType: MERGE_PATCH,
    });
  }

  private async deleteCollection(resource: string, labelSelector: string): Promise<void> {
    if (!labelSelector)
      throw new KubeApiError(0, 'BadRequest', `refusing to delete every ${resource}: empty label selector`);
    await this.transport.json('DELETE', this.path(resource), {
      query: { labelSelector, propagationPolicy: 'Background' },
    });
  }
}
