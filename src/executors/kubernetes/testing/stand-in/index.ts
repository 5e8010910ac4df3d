/**
 * An in-test stand-in for the Kubernetes API server: plain `node:http` speaking the part of the
 * core/v1 API the `kubernetes` executor uses, in one namespace, with the real server's shapes
 * (object metadata, lists, newline-delimited watch events, Status errors worded as the real
 * server words them). Pods are run by a {@link Kubelet}: Podman (`kubelet/`) or one a test
 * hands in. No real API server can run on these machines: this is what the executor is tested
 * against, and `kubectl` cross-checks it.
 *
 * Test support only (it imports `kubernetes-models`, a devDependency, for its schema checks).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigMap, Pod } from '../../kube-api.js';
import { kubeSchemaErrors } from '../schema.js';
import {
  API_GROUPS,
  AUTHORIZATION_GROUP,
  AUTHORIZATION_V1,
  CORE_V1,
  VERSION,
  apiVersions,
} from './discovery.js';
import type { Kubelet, KubeletFaults, PodHost, PodStatus } from './kubelet/types.js';
import { type ContainerPhase, parseSinceTime, streamLog } from './logs.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  unsupportedMediaType,
} from './status.js';
import { type Change, type KubeObject, type Resource, Store, nowSeconds } from './store.js';
import { defaultContainer, defaultPod, ephemeralErrors, metadataErrors, objectErrors } from './validation.js';

export type { Kubelet, KubeletFaults, PodHost, PodStatus } from './kubelet/types.js';

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The HTTP status answered (0 while no answer was sent). */
  status: number;
  /** When the request arrived (ms since the epoch). */
  time: number;
}

/** The kubelet's faults plus the API server's own. */
export interface Faults extends KubeletFaults {
  /** Every open watch gets an ERROR event with a 410 Expired Status and closes; watches from an older resourceVersion get 410 too. */
  expireWatches(): void;
  /** Open log streams end now, mid-way (the containers go on). */
  cutLogStreams(): void;
  /** Open watches stop sending anything (no events, bookmarks or end) and keep the connection: a half-open connection. */
  stallWatches(): void;
}

export interface StandInOptions {
  /** The one namespace served (default `ci-builds`); any other is 403 Forbidden. */
  namespace?: string;
  /** Who runs the pods (default `podman`). */
  kubelet?: 'podman' | Kubelet;
  /** `verb resource[/subresource]` that SelfSubjectAccessReview answers `allowed: false`. */
  deniedPermissions?: string[];
  /** Changes kept per resource for watches from a resourceVersion (default 1000); older is 410. */
  eventWindow?: number;
  /** How often a watch with `allowWatchBookmarks` gets a BOOKMARK (default 60 s, as a real server). */
  bookmarkIntervalMs?: number;
}

export interface StandIn {
  url: string;
  namespace: string;
  /** A kubeconfig for client-node and kubectl: server=url, insecure-skip-tls-verify, the namespace. */
  kubeconfigPath: string;
  requests: RequestRecord[];
  faults: Faults;
  /** The HTTP server goes away (open connections destroyed) and comes back on the same port with the same objects; pods keep running. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** The node every scheduled pod is on. */
const NODE = 'stand-in-node';
const MAX_BODY_BYTES = 3 * 1024 * 1024;

const KINDS: Record<Resource, { kind: string; listKind: string }> = {
  pods: { kind: 'Pod', listKind: 'PodList' },
  secrets: { kind: 'Secret', listKind: 'SecretList' },
  configmaps: { kind: 'ConfigMap', listKind: 'ConfigMapList' },
  events: { kind: 'Event', listKind: 'EventList' },
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const field = (o: unknown, ...path: string[]): string => {
  let v: unknown = o;
  for (const p of path) v = isObject(v) ? v[p] : undefined;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
};

/** The fields each resource's fieldSelector supports (as on a real server). */
const FIELDS: Record<Resource, Record<string, (o: KubeObject) => string>> = {
  pods: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
    'spec.nodeName': (o) => field(o, 'spec', 'nodeName'),
    'spec.restartPolicy': (o) => field(o, 'spec', 'restartPolicy'),
    'spec.schedulerName': (o) => field(o, 'spec', 'schedulerName'),
    'spec.serviceAccountName': (o) => field(o, 'spec', 'serviceAccountName'),
    'spec.hostNetwork': (o) => field(o, 'spec', 'hostNetwork') || 'false',
    'status.phase': (o) => field(o, 'status', 'phase'),
    'status.podIP': (o) => field(o, 'status', 'podIP'),
    'status.nominatedNodeName': (o) => field(o, 'status', 'nominatedNodeName'),
  },
  secrets: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
    type: (o) => field(o, 'type'),
  },
  configmaps: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
  },
  events: {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace,
    'involvedObject.kind': (o) => field(o, 'involvedObject', 'kind'),
    'involvedObject.namespace': (o) => field(o, 'involvedObject', 'namespace'),
    'involvedObject.name': (o) => field(o, 'involvedObject', 'name'),
    'involvedObject.uid': (o) => field(o, 'involvedObject', 'uid'),
    'involvedObject.apiVersion': (o) => field(o, 'involvedObject', 'apiVersion'),
    'involvedObject.resourceVersion': (o) => field(o, 'involvedObject', 'resourceVersion'),
    'involvedObject.fieldPath': (o) => field(o, 'involvedObject', 'fieldPath'),
    reason: (o) => field(o, 'reason'),
    reportingComponent: (o) => field(o, 'reportingComponent'),
    source: (o) => field(o, 'source', 'component'),
    type: (o) => field(o, 'type'),
  },
};

interface OpenWatch {
  resource: Resource;
  res: ServerResponse;
  matches(o: KubeObject): boolean;
  stalled: boolean;
  timers: NodeJS.Timeout[];
}

interface OpenLog {
  res: ServerResponse;
  abort: AbortController;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k], v);
  }
  return result;
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`strconv.ParseInt: parsing "${v}": invalid syntax`);
  return Number(v);
}

function withoutTypeMeta(o: KubeObject): Json {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

/** The state of one container of a pod, from its status (any of the three lists). */
function containerState(pod: KubeObject, container: string): Json | undefined {
  const status = isObject(pod.status) ? pod.status : {};
  for (const list of ['initContainerStatuses', 'containerStatuses', 'ephemeralContainerStatuses']) {
    const statuses = status[list];
    if (!Array.isArray(statuses)) continue;
    for (const s of statuses)
      if (isObject(s) && s.name === container) return isObject(s.state) ? s.state : {};
  }
  return undefined;
}

function containerNames(pod: KubeObject): string[] {
  const spec = isObject(pod.spec) ? pod.spec : {};
  const names: string[] = [];
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
    const cs = spec[list];
    if (Array.isArray(cs)) for (const c of cs) if (isObject(c)) names.push(String(c.name));
  }
  return names;
}

class StandInServer {
  readonly store: Store;
  readonly requests: RequestRecord[] = [];
  private http: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<OpenWatch>();
  private readonly logs = new Set<OpenLog>();
  /** Deletion propagation asked for each pod being deleted gracefully (by uid). */
  private readonly propagation = new Map<string, string>();
  port = 0;

  constructor(
    readonly namespace: string,
    readonly kubelet: Kubelet,
    private readonly options: StandInOptions,
  ) {
    this.store = new Store(options.eventWindow ?? 1000);
    this.store.onChange((resource, change) => {
      for (const w of this.watches) if (w.resource === resource) this.deliver(w, change);
    });
  }

  async listen(port: number): Promise<void> {
    const http = createServer((req, res) => void this.handle(req, res));
    http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, '127.0.0.1', () => resolve());
    });
    this.http = http;
    this.port = (http.address() as AddressInfo).port;
  }

  /** Stops answering: every open connection is destroyed, as when an API server goes away. */
  async stop(): Promise<void> {
    const http = this.http;
    if (!http) return;
    this.http = undefined;
    for (const w of this.watches) for (const t of w.timers) clearTimeout(t);
    this.watches.clear();
    for (const l of this.logs) l.abort.abort();
    this.logs.clear();
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  // ---- Faults ----

  expireWatches(): void {
    this.store.expireHistory();
    for (const w of [...this.watches]) {
      if (w.stalled) continue;
      this.sendEvent(w.res, 'ERROR', this.expired(0));
      this.endWatch(w);
    }
  }

  stallWatches(): void {
    for (const w of this.watches) {
      w.stalled = true;
      for (const t of w.timers) clearTimeout(t);
    }
  }

  cutLogStreams(): void {
    for (const l of [...this.logs]) {
      l.abort.abort();
      l.res.end();
    }
    this.logs.clear();
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      time: Date.now(),
    };
    this.requests.push(record);
    res.on('close', () => (record.status = res.headersSent ? res.statusCode : record.status));
    try {
      await this.route(req, res, url);
    } catch (error) {
      const e =
        error instanceof ApiError
          ? error
          : new ApiError(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`);
      if (!res.headersSent) this.send(res, e.code, e.toStatus());
      else res.end();
    } finally {
      record.status = res.headersSent ? res.statusCode : 0;
    }
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    const path = `/${parts.join('/')}`;
    const q = url.searchParams;
    if (method === 'GET') {
      if (path === '/version') return this.send(res, 200, VERSION);
      if (path === '/api') return this.send(res, 200, apiVersions(`127.0.0.1:${this.port}`));
      if (path === '/api/v1') return this.send(res, 200, CORE_V1);
      if (path === '/apis') return this.send(res, 200, API_GROUPS);
      if (path === '/apis/authorization.k8s.io') return this.send(res, 200, AUTHORIZATION_GROUP);
      if (path === '/apis/authorization.k8s.io/v1') return this.send(res, 200, AUTHORIZATION_V1);
    }
    if (path === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      if (method !== 'POST') throw methodNotAllowed();
      return this.accessReview(res, await readJson(req));
    }
    const [api, v1, namespaces, ns, resourceName, name, sub, ...more] = parts;
    if (
      api !== 'api' ||
      v1 !== 'v1' ||
      namespaces !== 'namespaces' ||
      !ns ||
      !resourceName ||
      more.length > 0
    ) {
      throw pathNotFound();
    }
    if (!(resourceName in KINDS)) throw pathNotFound();
    const resource = resourceName as Resource;
    if (sub !== undefined && (resource !== 'pods' || (sub !== 'log' && sub !== 'ephemeralcontainers'))) {
      throw pathNotFound();
    }
    const verb =
      method === 'POST'
        ? 'create'
        : method === 'PATCH'
          ? 'patch'
          : method === 'DELETE'
            ? name
              ? 'delete'
              : 'deletecollection'
            : method === 'GET'
              ? name
                ? 'get'
                : q.get('watch') === 'true' || q.get('watch') === '1'
                  ? 'watch'
                  : 'list'
              : 'unknown';
    if (ns !== this.namespace) throw forbidden(verb, sub ? `${resource}/${sub}` : resource, ns);
    if (resource === 'events' && !['get', 'list', 'watch'].includes(verb)) throw methodNotAllowed();

    if (!name) {
      if (verb === 'create') return this.create(res, resource, await readJson(req));
      if (verb === 'list') return this.list(res, resource, q);
      if (verb === 'watch') return this.watch(res, resource, q);
      if (verb === 'deletecollection')
        return this.deleteCollection(res, resource, q, await readJson(req, true));
      throw methodNotAllowed();
    }
    if (sub === 'log') {
      if (verb !== 'get') throw methodNotAllowed();
      return this.log(res, name, q);
    }
    if (sub === 'ephemeralcontainers') {
      if (verb === 'get') return this.send(res, 200, this.mustGet('pods', name));
      if (verb === 'patch') return this.patchEphemeral(res, name, req);
      throw methodNotAllowed();
    }
    if (verb === 'get') return this.send(res, 200, this.mustGet(resource, name));
    if (verb === 'patch') return this.patch(res, resource, name, req);
    if (verb === 'delete') return this.delete(res, resource, name, q, await readJson(req, true));
    throw methodNotAllowed();
  }

  private mustGet(resource: Resource, name: string): KubeObject {
    const o = this.store.get(resource, name);
    if (!o) throw notFound(resource, name);
    return o;
  }

  // ---- create, list, get, patch ----

  private create(res: ServerResponse, resource: Resource, body: unknown): void {
    const { kind } = KINDS[resource];
    if (!isObject(body)) throw badRequest(`the object provided is unrecognized (must be of type ${kind})`);
    body.apiVersion ??= 'v1';
    body.kind ??= kind;
    if (body.apiVersion !== 'v1' || body.kind !== kind) {
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (v1)`,
      );
    }
    const metadata = isObject(body.metadata) ? body.metadata : (body.metadata = {});
    if (metadata.namespace !== undefined && metadata.namespace !== this.namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== '') {
      throw badRequest('resourceVersion should not be set on objects to be created');
    }
    metadata.namespace = this.namespace;
    for (const k of [
      'uid',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'generation',
    ]) {
      delete metadata[k];
    }
    const object = body as KubeObject;
    const errors = objectErrors(object);
    if (errors.length > 0) throw invalid(kind, object.metadata.name ?? '', errors);
    if (this.store.get(resource, object.metadata.name)) throw alreadyExists(resource, object.metadata.name);
    if (resource === 'secrets') {
      normalizeSecret(object);
    }
    if (resource === 'pods') defaultPod(object);
    const stored = this.store.create(resource, object);
    if (resource === 'pods') this.kubelet.startPod(this.host(stored.metadata.name, stored.metadata.uid));
    this.send(res, 201, stored);
  }

  private selectors(resource: Resource, q: URLSearchParams): (o: KubeObject) => boolean {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), FIELDS[resource]);
    return (o) => labels(o.metadata.labels) && fields(o);
  }

  private list(res: ServerResponse, resource: Resource, q: URLSearchParams): void {
    const matches = this.selectors(resource, q);
    const items = this.store
      .list(resource)
      .filter(matches)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map(withoutTypeMeta);
    this.send(res, 200, {
      kind: KINDS[resource].listKind,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.store.resourceVersion) },
      items,
    });
  }

  private async patch(
    res: ServerResponse,
    resource: Resource,
    name: string,
    req: IncomingMessage,
  ): Promise<void> {
    const type = contentType(req);
    if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
      throw unsupportedMediaType();
    }
    const body = await readJson(req);
    const current = this.mustGet(resource, name);
    if (!isObject(body)) throw badRequest('the body of the request was in an unknown format');
    const patched = mergePatch(current, body) as KubeObject;
    if (!isObject(patched.metadata)) throw badRequest('metadata must be an object');
    if (patched.metadata.resourceVersion !== current.metadata.resourceVersion) throw conflict(resource, name);
    for (const k of [
      'name',
      'namespace',
      'uid',
      'creationTimestamp',
      'generation',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
    ] as const) {
      if (current.metadata[k] === undefined) delete patched.metadata[k];
      else (patched.metadata as Json)[k] = current.metadata[k];
    }
    patched.apiVersion = current.apiVersion;
    patched.kind = current.kind;
    const { kind } = KINDS[resource];
    if (resource === 'pods') {
      patched.status = current.status;
      const errors = metadataErrors(patched);
      if (JSON.stringify(patched.spec) !== JSON.stringify(current.spec)) {
        errors.push(
          'spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
        );
      }
      if (errors.length > 0) throw invalid(kind, name, errors);
    } else {
      if (resource === 'secrets') normalizeSecret(patched);
      const errors = objectErrors(patched);
      if (errors.length > 0) throw invalid(kind, name, errors);
    }
    const updated = this.store.update(resource, patched);
    if (
      resource === 'pods' &&
      JSON.stringify(updated.metadata.annotations ?? {}) !==
        JSON.stringify(current.metadata.annotations ?? {})
    ) {
      this.kubelet.annotationsChanged(this.host(name, updated.metadata.uid));
    }
    this.send(res, 200, updated);
  }

  private async patchEphemeral(res: ServerResponse, name: string, req: IncomingMessage): Promise<void> {
    const type = contentType(req);
    const strategic = type === 'application/strategic-merge-patch+json';
    if (!strategic && type !== 'application/merge-patch+json') throw unsupportedMediaType();
    const body = await readJson(req);
    const pod = this.mustGet('pods', name);
    const spec = pod.spec as Json;
    const before = (Array.isArray(spec.ephemeralContainers) ? spec.ephemeralContainers : []) as Json[];
    const patchSpec = isObject(body) && isObject(body.spec) ? body.spec : {};
    const patchList = patchSpec.ephemeralContainers;
    let after: Json[] = structuredClone(before);
    if (patchList === null) after = [];
    else if (Array.isArray(patchList)) {
      if (strategic) {
        // Strategic merge: the list is keyed by `name` (patchMergeKey): an item with a known
        // name is merged into that container, an unknown one is added.
        for (const item of patchList) {
          if (!isObject(item)) throw badRequest('ephemeralContainers items must be objects');
          const i = after.findIndex((c) => c.name === item.name);
          if (i < 0) after.push(item);
          else after[i] = mergePatch(after[i], item) as Json;
        }
      } else {
        after = patchList as Json[];
      }
    }
    const added = after.filter((c) => !before.some((b) => b.name === c.name));
    spec.ephemeralContainers = after;
    const errors = ephemeralErrors(pod, before);
    if (errors.length > 0) throw invalid('Pod', name, errors);
    for (const c of added) defaultContainer(c);
    if (after.length === 0) delete spec.ephemeralContainers;
    if (added.length > 0) pod.metadata.generation = (pod.metadata.generation ?? 1) + 1;
    const updated = this.store.update('pods', pod);
    if (added.length > 0) {
      this.kubelet.ephemeralContainersAdded(
        this.host(name, updated.metadata.uid),
        added.map((c) => String(c.name)),
      );
    }
    this.send(res, 200, updated);
  }

  // ---- delete ----

  private deleteOptions(q: URLSearchParams, body: unknown): { grace?: number; propagation: string } {
    const b = isObject(body) ? body : {};
    const grace =
      intParam(q, 'gracePeriodSeconds') ??
      (typeof b.gracePeriodSeconds === 'number' ? b.gracePeriodSeconds : undefined);
    const propagation =
      q.get('propagationPolicy') ??
      (typeof b.propagationPolicy === 'string' ? b.propagationPolicy : 'Background');
    if (!['Orphan', 'Background', 'Foreground'].includes(propagation)) {
      throw invalid('DeleteOptions', '', [
        `propagationPolicy: Unsupported value: "${propagation}": supported values: "Foreground", "Background", "Orphan"`,
      ]);
    }
    if (grace !== undefined && grace < 0) {
      throw invalid('DeleteOptions', '', [`gracePeriodSeconds: Invalid value: ${grace}: must be >= 0`]);
    }
    return { grace, propagation };
  }

  private delete(
    res: ServerResponse,
    resource: Resource,
    name: string,
    q: URLSearchParams,
    body: unknown,
  ): void {
    const options = this.deleteOptions(q, body);
    const object = this.mustGet(resource, name);
    if (resource === 'pods') return this.send(res, 200, this.deletePod(object, options));
    this.store.remove(resource, name);
    this.send(res, 200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, kind: resource, uid: object.metadata.uid },
    });
  }

  private deleteCollection(res: ServerResponse, resource: Resource, q: URLSearchParams, body: unknown): void {
    const options = this.deleteOptions(q, body);
    const matches = this.selectors(resource, q);
    const deleted: Json[] = [];
    for (const o of this.store.list(resource).filter(matches)) {
      if (resource === 'pods') deleted.push(withoutTypeMeta(this.deletePod(o, options)));
      else {
        const gone = this.store.remove(resource, o.metadata.name);
        if (gone) deleted.push(withoutTypeMeta(gone));
      }
    }
    this.send(res, 200, {
      kind: KINDS[resource].listKind,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.store.resourceVersion) },
      items: deleted,
    });
  }

  /**
   * Graceful deletion as the pod strategy does it: the grace period is the request's or the
   * pod's; an unscheduled or finished pod, or grace 0, is removed at once. Otherwise the pod
   * gets deletionTimestamp (MODIFIED) and is removed when the kubelet says so.
   */
  private deletePod(pod: KubeObject, options: { grace?: number; propagation: string }): KubeObject {
    const spec = pod.spec as Json;
    const phase = field(pod, 'status', 'phase');
    const host = this.host(pod.metadata.name, pod.metadata.uid);
    if (pod.metadata.deletionTimestamp && options.grace !== 0) return pod;
    let period =
      options.grace ??
      (typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30);
    if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') period = 0;
    this.propagation.set(pod.metadata.uid, options.propagation);
    if (period === 0) {
      this.kubelet.deletePod(host, 0);
      return this.removePod(pod.metadata.name, pod.metadata.uid) ?? pod;
    }
    pod.metadata.deletionTimestamp = new Date(Date.now() + period * 1000)
      .toISOString()
      .replace(/\.\d+Z$/, 'Z');
    pod.metadata.deletionGracePeriodSeconds = period;
    const updated = this.store.update('pods', pod);
    this.kubelet.deletePod(host, period);
    return updated;
  }

  /** Removes the pod (DELETED) and garbage-collects the Secrets and ConfigMaps it owns. */
  private removePod(name: string, uid: string): KubeObject | undefined {
    const pod = this.store.get('pods', name);
    if (!pod || pod.metadata.uid !== uid) return undefined;
    const gone = this.store.remove('pods', name);
    const orphan = this.propagation.get(uid) === 'Orphan';
    this.propagation.delete(uid);
    const liveOwners = new Set(this.store.list('pods').map((p) => p.metadata.uid));
    for (const resource of ['secrets', 'configmaps'] as const) {
      for (const o of this.store.list(resource)) {
        const refs = o.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const rest = refs.filter((r) => r.uid !== uid);
        if (orphan || rest.some((r) => liveOwners.has(r.uid))) {
          o.metadata.ownerReferences = rest.length > 0 ? rest : undefined;
          if (rest.length === 0) delete o.metadata.ownerReferences;
          this.store.update(resource, o);
        } else {
          this.store.remove(resource, o.metadata.name);
        }
      }
    }
    return gone;
  }

  // ---- watch ----

  private expired(rv: number): Json {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `too old resource version: ${rv} (${this.store.resourceVersion})`,
      reason: 'Expired',
      code: 410,
    };
  }

  private sendEvent(res: ServerResponse, type: string, object: unknown): void {
    res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private endWatch(w: OpenWatch): void {
    for (const t of w.timers) clearTimeout(t);
    this.watches.delete(w);
    w.res.end();
  }

  private deliver(w: OpenWatch, change: Change): void {
    if (w.stalled) return;
    const now = w.matches(change.object);
    if (change.type === 'MODIFIED') {
      const before = change.old ? w.matches(change.old) : false;
      if (now && before) this.sendEvent(w.res, 'MODIFIED', change.object);
      else if (now) this.sendEvent(w.res, 'ADDED', change.object);
      else if (before) this.sendEvent(w.res, 'DELETED', change.object);
    } else if (now) {
      this.sendEvent(w.res, change.type, change.object);
    }
  }

  private watch(res: ServerResponse, resource: Resource, q: URLSearchParams): void {
    const matches = this.selectors(resource, q);
    const rvParam = q.get('resourceVersion') ?? '';
    const timeoutSeconds = intParam(q, 'timeoutSeconds');
    let from: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      if (!/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
      from = Number(rvParam);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { resource, res, matches, stalled: false, timers: [] };
    if (from === undefined) {
      for (const o of this.store.list(resource).filter(matches)) this.sendEvent(res, 'ADDED', o);
    } else {
      const changes = this.store.changesSince(resource, from);
      if (changes === 'expired') {
        this.sendEvent(res, 'ERROR', this.expired(from));
        res.end();
        return;
      }
      for (const c of changes) this.deliver(w, c);
    }
    this.watches.add(w);
    res.on('close', () => {
      for (const t of w.timers) clearTimeout(t);
      this.watches.delete(w);
    });
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) {
      w.timers.push(setTimeout(() => this.endWatch(w), timeoutSeconds * 1000));
    }
    if (q.get('allowWatchBookmarks') === 'true') {
      const interval = this.options.bookmarkIntervalMs ?? 60_000;
      const tick = () => {
        const bookmark: Json = {
          kind: KINDS[resource].kind,
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.store.resourceVersion), creationTimestamp: null },
        };
        if (resource === 'pods') Object.assign(bookmark, { spec: { containers: null }, status: {} });
        this.sendEvent(res, 'BOOKMARK', bookmark);
        w.timers.push(setTimeout(tick, interval));
      };
      w.timers.push(setTimeout(tick, interval));
    }
  }

  // ---- logs ----

  private async log(res: ServerResponse, name: string, q: URLSearchParams): Promise<void> {
    const pod = this.mustGet('pods', name);
    const names = containerNames(pod);
    let container = q.get('container') ?? '';
    if (container === '') {
      const regular = Array.isArray((pod.spec as Json).containers)
        ? ((pod.spec as Json).containers as Json[])
        : [];
      if (regular.length === 1) container = String(regular[0]!.name);
      else if (regular.length === 0) throw badRequest(`a container name must be specified for pod ${name}`);
      else
        throw badRequest(
          `a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`,
        );
    } else if (!names.includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${name}`);
    }
    const sinceTime = q.get('sinceTime');
    let sinceSeconds: number | undefined;
    if (sinceTime !== null && sinceTime !== '') {
      sinceSeconds = parseSinceTime(sinceTime);
      if (sinceSeconds === undefined) {
        throw badRequest(
          `parsing time "${sinceTime}" as "2006-01-02T15:04:05Z07:00": cannot parse "${sinceTime}" as "2006"`,
        );
      }
    }
    const relative = intParam(q, 'sinceSeconds');
    if (relative !== undefined) sinceSeconds = Math.floor(Date.now() / 1000) - relative;
    const tailLines = intParam(q, 'tailLines');
    const limitBytes = intParam(q, 'limitBytes');
    const state = containerState(pod, container);
    if (!state || (!state.running && !state.terminated)) {
      const reason = isObject(state?.waiting) ? field(state.waiting, 'reason') : 'ContainerCreating';
      const why =
        reason === 'ErrImagePull'
          ? ": image can't be pulled"
          : reason === 'ImagePullBackOff'
            ? ': trying and failing to pull image'
            : reason
              ? `: ${reason}`
              : ' - no logs yet';
      throw badRequest(`container "${container}" in pod "${name}" is waiting to start${why}`);
    }
    const uid = pod.metadata.uid;
    const phase = (): ContainerPhase => {
      const now = this.store.get('pods', name);
      if (!now || now.metadata.uid !== uid) return 'gone';
      return containerState(now, container)?.terminated ? 'terminated' : 'running';
    };
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const open: OpenLog = { res, abort: new AbortController() };
    this.logs.add(open);
    res.on('close', () => {
      open.abort.abort();
      this.logs.delete(open);
    });
    await streamLog(
      { file: () => this.kubelet.logFile(name, container), phase },
      {
        follow: q.get('follow') === 'true',
        timestamps: q.get('timestamps') === 'true',
        sinceSeconds,
        tailLines,
        limitBytes,
      },
      (chunk) => res.write(chunk),
      open.abort.signal,
    );
    this.logs.delete(open);
    res.end();
  }

  // ---- events, access reviews, the kubelet's host ----

  private warn(name: string, uid: string, reason: string, message: string): void {
    const pod = this.store.get('pods', name);
    if (!pod || pod.metadata.uid !== uid) return;
    const now = nowSeconds();
    const same = this.store
      .list('events')
      .find((e) => field(e, 'involvedObject', 'uid') === uid && e.reason === reason && e.message === message);
    if (same) {
      same.count = (typeof same.count === 'number' ? same.count : 1) + 1;
      same.lastTimestamp = now;
      this.store.update('events', same);
      return;
    }
    this.store.create('events', {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${name}.${randomBytes(8).toString('hex')}`,
        namespace: this.namespace,
        uid: '',
        resourceVersion: '',
      },
      involvedObject: {
        kind: 'Pod',
        namespace: this.namespace,
        name,
        uid,
        apiVersion: 'v1',
        resourceVersion: pod.metadata.resourceVersion,
      },
      reason,
      message,
      source: { component: 'kubelet', host: NODE },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type: 'Warning',
      eventTime: null,
      reportingComponent: 'kubelet',
      reportingInstance: NODE,
    });
  }

  private accessReview(res: ServerResponse, body: unknown): void {
    if (!isObject(body))
      throw badRequest('the object provided is unrecognized (must be of type SelfSubjectAccessReview)');
    body.apiVersion ??= 'authorization.k8s.io/v1';
    body.kind ??= 'SelfSubjectAccessReview';
    const errors = kubeSchemaErrors(body);
    if (errors.length > 0) throw invalid('SelfSubjectAccessReview', '', errors);
    const spec = isObject(body.spec) ? body.spec : {};
    const ra = isObject(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
    if (!ra) {
      throw invalid('SelfSubjectAccessReview', '', [
        'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
      ]);
    }
    const key = `${field(ra, 'verb')} ${field(ra, 'resource')}${ra.subresource ? `/${field(ra, 'subresource')}` : ''}`;
    const inNamespace = ra.namespace === undefined || ra.namespace === this.namespace;
    const allowed = inNamespace && !(this.options.deniedPermissions ?? []).includes(key);
    this.send(res, 201, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec,
      status: allowed
        ? {
            allowed: true,
            reason: `RBAC: allowed by RoleBinding "slipway/${this.namespace}" of Role "slipway" to ServiceAccount "slipway/slipway"`,
          }
        : { allowed: false },
    });
  }

  host(name: string, uid: string): PodHost {
    const current = (): KubeObject | undefined => {
      const p = this.store.get('pods', name);
      return p && p.metadata.uid === uid ? p : undefined;
    };
    return {
      pod: () => current() as Pod | undefined,
      updateStatus: (mutate) => {
        const pod = current();
        if (!pod) return;
        const status = structuredClone((pod.status ?? {}) as PodStatus);
        mutate(status);
        pod.status = status;
        // The scheduler's binding: a pod the kubelet reports on is on its node.
        const spec = pod.spec as Json;
        const scheduled =
          status.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True') ||
          (status.phase !== undefined && status.phase !== 'Pending') ||
          (status.containerStatuses?.length ?? 0) > 0;
        if (!spec.nodeName && scheduled) spec.nodeName = NODE;
        this.store.update('pods', pod);
      },
      secretValue: (secret, key) => {
        const s = this.store.get('secrets', secret);
        const v = s && isObject(s.data) ? s.data[key] : undefined;
        return typeof v === 'string' ? Buffer.from(v, 'base64').toString() : undefined;
      },
      configMap: (cm) => this.store.get('configmaps', cm) as ConfigMap | undefined,
      warn: (reason, message) => this.warn(name, uid, reason, message),
      removed: () => void this.removePod(name, uid),
    };
  }
}

/** `stringData` is folded into `data` (base64), and `type` defaults to Opaque, as on a real server. */
function normalizeSecret(secret: KubeObject): void {
  if (isObject(secret.stringData)) {
    const data = isObject(secret.data) ? secret.data : (secret.data = {});
    for (const [k, v] of Object.entries(secret.stringData))
      data[k] = Buffer.from(String(v)).toString('base64');
    delete secret.stringData;
  }
  secret.type ??= 'Opaque';
}

function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString();
  if (text.trim() === '') {
    if (optional) return undefined;
    throw badRequest('the body of the request was empty');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`the object provided is unrecognized: ${(e as Error).message}`);
  }
}

/** Starts the stand-in on a free port of 127.0.0.1 and writes its kubeconfig. */
export async function startStandIn(options: StandInOptions = {}): Promise<StandIn> {
  const namespace = options.namespace ?? 'ci-builds';
  const dir = await mkdtemp(join(tmpdir(), 'slipway-stand-in-'));
  let kubelet: Kubelet;
  if (typeof options.kubelet === 'object') kubelet = options.kubelet;
  else {
    const { PodmanKubelet } = await import('./kubelet/podman-kubelet.js');
    kubelet = new PodmanKubelet({ namespace, stateDir: join(dir, 'kubelet') });
  }
  const server = new StandInServer(namespace, kubelet, options);
  await server.listen(0);
  const url = `http://127.0.0.1:${server.port}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stand-in', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'stand-in', user: { token: 'stand-in' } }],
      contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'stand-in', namespace } }],
      'current-context': 'stand-in',
    }),
  );
  const kf = kubelet.faults;
  let closed = false;
  return {
    url,
    namespace,
    kubeconfigPath,
    requests: server.requests,
    faults: {
      unpullable: (image) => kf.unpullable(image),
      unschedulable: (message) => kf.unschedulable(message),
      oomKill: (pod, container) => kf.oomKill(pod, container),
      evict: (pod, message) => kf.evict(pod, message),
      expireWatches: () => server.expireWatches(),
      cutLogStreams: () => server.cutLogStreams(),
      stallWatches: () => server.stallWatches(),
    },
    restart: async () => {
      const port = server.port;
      await server.stop();
      await server.listen(port);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await server.stop();
      await kubelet.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
