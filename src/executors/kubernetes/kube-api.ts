/**
 * The narrow part of the Kubernetes API the executor, `slipway doctor`, `slipway gc` and the
 * reconciler use, in one namespace. Objects are plain JSON as the API serves them (timestamps
 * are strings); the types come from `kubernetes-models` (type-only: nothing of it loads at run
 * time). `client/` implements it on `@kubernetes/client-node` 1.4; tests may hand in another.
 *
 * Errors: every call rejects with {@link KubeApiError} (HTTP status, the Status `reason` and
 * message); a connection that fails or does not answer within the request timeout is status 0.
 */
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IEphemeralContainer } from 'kubernetes-models/v1/EphemeralContainer';
import type { IEvent } from 'kubernetes-models/v1/Event';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { ISecret } from 'kubernetes-models/v1/Secret';

export type Pod = IPod;
export type Secret = ISecret;
export type ConfigMap = IConfigMap;
export type KubeEvent = IEvent;
export type EphemeralContainer = IEphemeralContainer;

/** A change seen by {@link KubeApi.watchPods}. */
export type PodChange =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; pod: Pod }
  /**
   * The watch was re-listed (after `410 Gone`, a dropped connection, or the watchdog): `pods`
   * is every pod matching the selector now; a pod not in it was deleted meanwhile.
   */
  | { type: 'SYNC'; pods: Pod[] };

/** One line of a container's log as `follow` delivers it (without the timestamp prefix). */
export interface LogLine {
  /** The line's bytes without the trailing newline. */
  text: Buffer;
  /** False for the last bytes of a log that end without a newline. */
  newline: boolean;
}

export interface FollowLogOptions {
  pod: string;
  container: string;
  /**
   * Called when a follow stream ends: true when the container has terminated (so the log is
   * complete), false when the stream was cut while it runs (then it is resumed with
   * `sinceTime`, skipping the lines already delivered: no gap, no duplicate).
   */
  ended(): Promise<boolean>;
  signal: AbortSignal;
}

export interface KubeApi {
  readonly namespace: string;
  /** `GET /version`: the server's `gitVersion`. */
  version(): Promise<string>;

  createPod(pod: Pod): Promise<Pod>;
  /** `undefined` on 404. */
  getPod(name: string): Promise<Pod | undefined>;
  listPods(labelSelector: string): Promise<{ items: Pod[]; resourceVersion: string }>;
  /**
   * Lists, then watches from the list's `resourceVersion` (bookmarks on, `timeoutSeconds` on
   * the server), for as long as `signal` is not aborted: `onChange` first gets a `SYNC` with
   * the list, then every change in order. On `410 Gone`, an ERROR event, a closed or failed
   * connection, or nothing (not even a bookmark) for `watchdogMs`, it lists again (one `SYNC`)
   * and goes on; connection failures back off up to 5 s. (A watch the server ends cleanly at
   * its `timeoutSeconds` is resumed from the last resourceVersion, which bookmarks keep fresh,
   * without a list.) Resolves when `signal` aborts.
   */
  watchPods(
    labelSelector: string,
    onChange: (change: PodChange) => void,
    signal: AbortSignal,
    options?: { watchdogMs?: number },
  ): Promise<void>;
  /** JSON merge patch of `metadata.annotations` (`null` removes a key). */
  annotatePod(name: string, annotations: Record<string, string | null>): Promise<Pod>;
  /**
   * Adds an ephemeral container (strategic merge patch of `pods/<name>/ephemeralcontainers`,
   * keyed by container name, so that concurrent adds do not conflict).
   */
  addEphemeralContainer(name: string, container: EphemeralContainer): Promise<Pod>;
  /** `gracePeriodSeconds`, propagation `Background`; 404 is success. */
  deletePod(name: string, gracePeriodSeconds?: number): Promise<void>;
  /** `deletecollection` by label selector. */
  deletePods(labelSelector: string): Promise<void>;

  createSecret(secret: Secret): Promise<Secret>;
  listSecrets(labelSelector: string): Promise<Secret[]>;
  /** JSON merge patch of `metadata.ownerReferences` and nothing else. */
  setSecretOwner(name: string, owner: OwnerReference): Promise<void>;
  deleteSecrets(labelSelector: string): Promise<void>;

  createConfigMap(configMap: ConfigMap): Promise<ConfigMap>;
  listConfigMaps(labelSelector: string): Promise<ConfigMap[]>;
  setConfigMapOwner(name: string, owner: OwnerReference): Promise<void>;
  deleteConfigMaps(labelSelector: string): Promise<void>;

  /** Warning events of one pod (`involvedObject.name=<pod>,type=Warning`), oldest first. */
  podWarnings(pod: string): Promise<KubeEvent[]>;

  /**
   * Follows one container's log from its first line (`follow=true&timestamps=true`) and hands
   * each line to `onLine` exactly once, in order, until the log is complete (`ended()` says the
   * container terminated and a last read found nothing new) or `signal` aborts. Status 400
   * while the container is being created is waited out (backing off up to 1 s).
   */
  followLog(options: FollowLogOptions, onLine: (line: LogLine) => void): Promise<void>;

  /** `SelfSubjectAccessReview`: may this client do `verb` on `resource` in the namespace? */
  canI(verb: string, resource: string, subresource?: string): Promise<boolean>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A failed API call: `status` 0 when no HTTP answer came. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    /** The Status object's `reason` (`AlreadyExists`, `NotFound`, `Forbidden`, `Invalid`…). */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KubeApiError';
  }
}
