/**
 * The routes of `/api/v1` as typed endpoints, shared by the CLI's and the web UI's clients:
 * each function builds the method and path (every user-given part encoded, so odd names cannot
 * change the route) and carries the answer's type. Transport (fetch, auth, timeouts) stays with
 * each client: `call(endpoint)` resolves with `Endpoint<T>`'s `T`.
 */
import type {
  Artifact,
  Build,
  BuildDetail,
  ExecutorInfo,
  LogPage,
  Page,
  Project,
  ProjectCreate,
  ProjectStats,
  ProjectUpdate,
  Queue,
  SecretInfo,
  SecretSet,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from './dto.js';
import type { Status } from './status.js';

export const API_PREFIX = '/api/v1';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One call: method, path under {@link API_PREFIX}, body; `T` is the type of the JSON answer. */
export interface Endpoint<T> {
  readonly method: Method;
  readonly path: string;
  readonly body?: unknown;
  /** Never set: carries `T` for the client's `call`. */
  readonly answer?: T;
}

/** Filters of the build lists; `before` is the cursor of the previous page. */
export interface BuildQuery {
  status?: Status | undefined;
  branch?: string | undefined;
  limit?: number | undefined;
  before?: string | undefined;
}

/** `?a=1&b=x`, leaving out undefined and empty values; `''` when nothing is left. */
export function queryString(params: Readonly<Record<string, string | number | boolean | undefined>>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** `owner/name` → `/projects/owner/name`, each part encoded. */
export function projectPath(slug: string): string {
  return `/projects/${slug.split('/').map(encodeURIComponent).join('/')}`;
}

/** Secrets of a project, or the global ones for `null`. */
export function secretsPath(project: string | null): string {
  return project === null ? '/secrets' : `${projectPath(project)}/secrets`;
}

/** A `/`-separated artifact path, each segment encoded. */
export function artifactPath(buildId: number, path: string): string {
  return `/builds/${buildId}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
}

export function stepLogPath(buildId: number, stage: string, step: string): string {
  return `/builds/${buildId}/steps/${encodeURIComponent(stage)}/${encodeURIComponent(step)}/log`;
}

/** The live log (`text/event-stream`): lines after `after`, then live ones, then `end`. */
export function logStreamPath(buildId: number, after?: number): string {
  return `/builds/${buildId}/logs${queryString({ follow: 1, after: after !== undefined && after > 0 ? after : undefined })}`;
}

const get = <T>(path: string): Endpoint<T> => ({ method: 'GET', path });
const send = <T>(method: Method, path: string, body?: unknown): Endpoint<T> =>
  body === undefined ? { method, path } : { method, path, body };

/** Every JSON route of the API, by what it does. */
export const endpoints = {
  whoami: () => get<TokenInfo>('/whoami'),
  signIn: (token: string) => send<TokenInfo>('POST', '/session', { token }),
  signOut: () => send<void>('DELETE', '/session'),

  listProjects: (q: { limit?: number | undefined; before?: string | undefined } = {}) =>
    get<Page<Project>>(`/projects${queryString(q)}`),
  getProject: (slug: string) => get<Project>(projectPath(slug)),
  createProject: (body: ProjectCreate) => send<Project>('POST', '/projects', body),
  updateProject: (slug: string, body: ProjectUpdate) => send<Project>('PATCH', projectPath(slug), body),
  deleteProject: (slug: string) => send<void>('DELETE', projectPath(slug)),
  projectStats: (slug: string) => get<ProjectStats>(`${projectPath(slug)}/stats`),
  executors: () => get<ExecutorInfo[]>('/executors'),

  /** Builds of one project, or of all projects when `slug` is undefined. */
  listBuilds: (slug: string | undefined, q: BuildQuery = {}) =>
    get<Page<Build>>(`${slug === undefined ? '' : projectPath(slug)}/builds${queryString({ ...q })}`),
  trigger: (slug: string, body: TriggerRequest) => send<Build>('POST', `${projectPath(slug)}/builds`, body),
  getProjectBuild: (slug: string, number: number) =>
    get<BuildDetail>(`${projectPath(slug)}/builds/${number}`),
  getBuild: (id: number) => get<BuildDetail>(`/builds/${id}`),
  cancel: (id: number) => send<Build>('POST', `/builds/${id}/cancel`, {}),
  /** `comment`: why, for the build's approval record (left out when empty). */
  approve: (id: number, comment?: string) =>
    send<Build>('POST', `/builds/${id}/approve`, comment ? { comment } : {}),
  reject: (id: number, comment?: string) =>
    send<Build>('POST', `/builds/${id}/reject`, comment ? { comment } : {}),
  /** `failedOnly`: re-run only what failed (409 unless the build ended and did not succeed). */
  rerun: (id: number, failedOnly = false) =>
    send<Build>('POST', `/builds/${id}/rerun`, failedOnly ? { failedOnly: true } : {}),
  logPage: (id: number, q: { after?: number | undefined; limit?: number | undefined } = {}) =>
    get<LogPage>(`/builds/${id}/logs${queryString(q)}`),
  listArtifacts: (id: number) => get<Artifact[]>(`/builds/${id}/artifacts`),

  queue: () => get<Queue>('/queue'),

  listTokens: () => get<TokenInfo[]>('/tokens'),
  createToken: (body: TokenCreate) => send<TokenCreated>('POST', '/tokens', body),
  revokeToken: (id: number) => send<void>('DELETE', `/tokens/${id}`),

  listSecrets: (project: string | null) => get<SecretInfo[]>(secretsPath(project)),
  setSecret: (project: string | null, name: string, body: SecretSet) =>
    send<SecretInfo>('PUT', `${secretsPath(project)}/${encodeURIComponent(name)}`, body),
  deleteSecret: (project: string | null, name: string) =>
    send<void>('DELETE', `${secretsPath(project)}/${encodeURIComponent(name)}`),
} as const;
