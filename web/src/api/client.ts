import type {
  ApiErrorBody,
  ArtifactInfo,
  Build,
  ExecutorInfo,
  BuildDetail,
  LogPage,
  Page,
  Project,
  ProjectCreate,
  ProjectStats,
  ProjectUpdate,
  Queue,
  Role,
  Status,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from './types';

const BASE = '/api/v1';

/** A failed API call: the HTTP status plus the server's `{error:{code,message,details}}`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** The role the server said the call needs (403 answers carry it). */
  get requiredRole(): Role | undefined {
    const details = this.details;
    if (typeof details !== 'object' || details === null || !('requiredRole' in details)) return undefined;
    const role = details.requiredRole;
    return role === 'admin' || role === 'member' || role === 'viewer' ? role : undefined;
  }
}

/** What a person should read for a failed call, with the 401/403 cases spelt out. */
export function describeError(error: unknown, role?: Role): string {
  if (!(error instanceof ApiError)) {
    return error instanceof Error
      ? `Could not reach the server: ${error.message}`
      : 'Could not reach the server';
  }
  if (error.status === 401) return 'The server refused the token: it is wrong, revoked or mistyped.';
  if (error.status === 403) {
    const needed = error.requiredRole;
    const mine = role !== undefined ? `Your token has the ${role} role` : 'Your token lacks the role';
    return needed !== undefined ? `${mine}; this needs ${needed}.` : `${mine}: ${error.message}`;
  }
  return error.message;
}

export interface BuildQuery {
  status?: Status | undefined;
  branch?: string | undefined;
  before?: string | undefined;
  limit?: number | undefined;
}

function slugPath(slug: string): string {
  return slug.split('/').map(encodeURIComponent).join('/');
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

function isErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const error = value.error;
  return typeof error === 'object' && error !== null && 'message' in error;
}

/**
 * The typed client of `/api/v1`: one method per route the UI uses. The browser signs every
 * call with the session cookie (HttpOnly: this code never sees it), and every call carries
 * the CSRF header the server asks of cookie-signed changes; a 401 also tells
 * `onUnauthorized` (the app then asks for a token again).
 */
export class ApiClient {
  constructor(private readonly onUnauthorized: () => void = () => undefined) {}

  /** Who this browser is signed in as; a 401 when it is not. */
  whoami(signal?: AbortSignal): Promise<TokenInfo> {
    return this.json('GET', '/whoami', undefined, signal);
  }

  /** Signs this browser in: the server checks the token and answers with a session cookie. */
  signIn(token: string): Promise<TokenInfo> {
    return this.json('POST', '/session', { token });
  }

  /** Ends the session on the server and drops the cookie. */
  async signOut(): Promise<void> {
    await this.send('DELETE', '/session');
  }

  // Projects

  listProjects(before?: string, signal?: AbortSignal): Promise<Page<Project>> {
    return this.json('GET', `/projects${query({ before, limit: 100 })}`, undefined, signal);
  }

  getProject(slug: string, signal?: AbortSignal): Promise<Project> {
    return this.json('GET', `/projects/${slugPath(slug)}`, undefined, signal);
  }

  createProject(body: ProjectCreate): Promise<Project> {
    return this.json('POST', '/projects', body);
  }

  updateProject(slug: string, body: ProjectUpdate): Promise<Project> {
    return this.json('PATCH', `/projects/${slugPath(slug)}`, body);
  }

  /** The executors of this server, for a project's executor setting. */
  executors(signal?: AbortSignal): Promise<ExecutorInfo[]> {
    return this.json('GET', '/executors', undefined, signal);
  }

  projectStats(slug: string, signal?: AbortSignal): Promise<ProjectStats> {
    return this.json('GET', `/projects/${slugPath(slug)}/stats`, undefined, signal);
  }

  // Builds

  listBuilds(slug: string, q: BuildQuery, signal?: AbortSignal): Promise<Page<Build>> {
    return this.json('GET', `/projects/${slugPath(slug)}/builds${query({ ...q })}`, undefined, signal);
  }

  trigger(slug: string, body: TriggerRequest): Promise<Build> {
    return this.json('POST', `/projects/${slugPath(slug)}/builds`, body);
  }

  getBuild(slug: string, number: number, signal?: AbortSignal): Promise<BuildDetail> {
    return this.json('GET', `/projects/${slugPath(slug)}/builds/${number}`, undefined, signal);
  }

  getBuildById(id: number, signal?: AbortSignal): Promise<BuildDetail> {
    return this.json('GET', `/builds/${id}`, undefined, signal);
  }

  cancel(id: number): Promise<Build> {
    return this.json('POST', `/builds/${id}/cancel`);
  }

  /** `comment`: why, for the build's approval record (left out when empty). */
  approve(id: number, comment?: string): Promise<Build> {
    return this.json('POST', `/builds/${id}/approve`, comment ? { comment } : {});
  }

  reject(id: number, comment?: string): Promise<Build> {
    return this.json('POST', `/builds/${id}/reject`, comment ? { comment } : {});
  }

  rerun(id: number): Promise<Build> {
    return this.json('POST', `/builds/${id}/rerun`);
  }

  queue(signal?: AbortSignal): Promise<Queue> {
    return this.json('GET', '/queue', undefined, signal);
  }

  // Logs

  logPage(id: number, after: number, limit: number, signal?: AbortSignal): Promise<LogPage> {
    return this.json('GET', `/builds/${id}/logs${query({ after, limit })}`, undefined, signal);
  }

  /**
   * The live log as a `text/event-stream` body (lines after `after`, then live ones, then
   * `end`). Read with fetch rather than EventSource, so errors keep their status and body.
   */
  async logStream(id: number, after: number, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send(
      'GET',
      `/builds/${id}/logs${query({ follow: 1, after })}`,
      undefined,
      signal,
      {
        accept: 'text/event-stream',
      },
    );
    if (response.body === null)
      throw new ApiError(response.status, 'http', 'the live log answered without a body');
    return response.body;
  }

  /** The whole build's log as text, each line prefixed with `[stage/step]`. */
  buildLog(id: number): Promise<Blob> {
    return this.blob(`/builds/${id}/log`);
  }

  stepLog(id: number, stage: string, step: string): Promise<Blob> {
    return this.blob(`/builds/${id}/steps/${encodeURIComponent(stage)}/${encodeURIComponent(step)}/log`);
  }

  // Artifacts (issue 5): null when the server has no artifacts route.

  async artifacts(id: number, signal?: AbortSignal): Promise<ArtifactInfo[] | null> {
    try {
      return await this.json<ArtifactInfo[]>('GET', `/builds/${id}/artifacts`, undefined, signal);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) return null;
      throw error;
    }
  }

  artifact(id: number, path: string): Promise<Blob> {
    return this.blob(`/builds/${id}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`);
  }

  // Tokens

  listTokens(signal?: AbortSignal): Promise<TokenInfo[]> {
    return this.json('GET', '/tokens', undefined, signal);
  }

  createToken(body: TokenCreate): Promise<TokenCreated> {
    return this.json('POST', '/tokens', body);
  }

  async revokeToken(id: number): Promise<void> {
    await this.send('DELETE', `/tokens/${id}`);
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.send(method, path, body, signal);
    return (await response.json()) as T;
  }

  private async blob(path: string): Promise<Blob> {
    return (await this.send('GET', path)).blob();
  }

  private async send(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {
      // Asked of every cookie-signed change: another site's page cannot send it.
      'x-slipway-csrf': '1',
      accept: 'application/json',
      ...extraHeaders,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${BASE}${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
    if (response.ok) return response;
    const parsed: unknown = await response.json().catch(() => undefined);
    const error = isErrorBody(parsed)
      ? new ApiError(response.status, parsed.error.code, parsed.error.message, parsed.error.details)
      : new ApiError(response.status, 'http', `${response.status} ${response.statusText}`);
    if (response.status === 401) this.onUnauthorized();
    throw error;
  }
}
