import {
  API_PREFIX,
  artifactPath,
  endpoints,
  logStreamPath,
  stepLogPath,
  type BuildQuery,
  type Endpoint,
} from '../../../src/contract/api.js';
import {
  decodeApiError,
  requiredRole,
  type ApiErrorCode,
  type ClientErrorCode,
} from '../../../src/contract/api-errors.js';
import { scheduleEndpoints } from '../../../src/contract/schedule-api.js';
import { testEndpoints } from '../../../src/contract/tests-api.js';
import type { BuildTests, ProjectTests } from '../../../src/contract/tests.js';
import { badgeEndpoints, type BadgeSettings } from '../../../src/contract/badge-api.js';
import {
  notificationEndpoints,
  type CommitStatusDeliveryDto,
  type EmailDeliveryDto,
} from '../../../src/contract/notifications-api.js';
import type { Schedule, ScheduleCreate, ScheduleUpdate } from '../../../src/contract/schedules.js';
import type {
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
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from './types';

/** A failed API call: the HTTP status plus the server's `{error:{code,message,details}}`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: ApiErrorCode | ClientErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** The role the server said the call needs (403 answers carry it). */
  get requiredRole(): Role | undefined {
    return requiredRole(this.details);
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

export type { BuildQuery };

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
    return this.call(endpoints.whoami(), signal);
  }

  /** Signs this browser in: the server checks the token and answers with a session cookie. */
  signIn(token: string): Promise<TokenInfo> {
    return this.call(endpoints.signIn(token));
  }

  /** Ends the session on the server and drops the cookie. */
  async signOut(): Promise<void> {
    await this.call(endpoints.signOut());
  }

  // Projects

  listProjects(before?: string, signal?: AbortSignal): Promise<Page<Project>> {
    return this.call(endpoints.listProjects({ before, limit: 100 }), signal);
  }

  getProject(slug: string, signal?: AbortSignal): Promise<Project> {
    return this.call(endpoints.getProject(slug), signal);
  }

  createProject(body: ProjectCreate): Promise<Project> {
    return this.call(endpoints.createProject(body));
  }

  updateProject(slug: string, body: ProjectUpdate): Promise<Project> {
    return this.call(endpoints.updateProject(slug, body));
  }

  /** The executors of this server, for a project's executor setting. */
  executors(signal?: AbortSignal): Promise<ExecutorInfo[]> {
    return this.call(endpoints.executors(), signal);
  }

  projectStats(slug: string, signal?: AbortSignal): Promise<ProjectStats> {
    return this.call(endpoints.projectStats(slug), signal);
  }

  // Builds

  listBuilds(slug: string, q: BuildQuery, signal?: AbortSignal): Promise<Page<Build>> {
    return this.call(endpoints.listBuilds(slug, q), signal);
  }

  trigger(slug: string, body: TriggerRequest): Promise<Build> {
    return this.call(endpoints.trigger(slug, body));
  }

  getBuild(slug: string, number: number, signal?: AbortSignal): Promise<BuildDetail> {
    return this.call(endpoints.getProjectBuild(slug, number), signal);
  }

  getBuildById(id: number, signal?: AbortSignal): Promise<BuildDetail> {
    return this.call(endpoints.getBuild(id), signal);
  }

  cancel(id: number): Promise<Build> {
    return this.call(endpoints.cancel(id));
  }

  /** `comment`: why, for the build's approval record (left out when empty). */
  approve(id: number, comment?: string): Promise<Build> {
    return this.call(endpoints.approve(id, comment));
  }

  reject(id: number, comment?: string): Promise<Build> {
    return this.call(endpoints.reject(id, comment));
  }

  /** `failedOnly`: only what failed runs again, the rest is reused. */
  rerun(id: number, failedOnly = false): Promise<Build> {
    return this.call(endpoints.rerun(id, failedOnly));
  }

  queue(signal?: AbortSignal): Promise<Queue> {
    return this.call(endpoints.queue(), signal);
  }

  // Logs

  logPage(id: number, after: number, limit: number, signal?: AbortSignal): Promise<LogPage> {
    return this.call(endpoints.logPage(id, { after, limit }), signal);
  }

  /**
   * The live log as a `text/event-stream` body (lines after `after`, then live ones, then
   * `end`). Read with fetch rather than EventSource, so errors keep their status and body.
   */
  async logStream(id: number, after: number, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send('GET', logStreamPath(id, after), undefined, signal, {
      accept: 'text/event-stream',
    });
    if (response.body === null)
      throw new ApiError(response.status, 'http', 'the live log answered without a body');
    return response.body;
  }

  /** The whole build's log as text, each line prefixed with `[stage/step]`. */
  buildLog(id: number): Promise<Blob> {
    return this.blob(`/builds/${id}/log`);
  }

  stepLog(id: number, stage: string, step: string): Promise<Blob> {
    return this.blob(stepLogPath(id, stage, step));
  }

  // Artifacts (issue 5): null when the server has no artifacts route.

  async artifacts(id: number, signal?: AbortSignal): Promise<ArtifactInfo[] | null> {
    try {
      return await this.call(endpoints.listArtifacts(id), signal);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) return null;
      throw error;
    }
  }

  artifact(id: number, path: string): Promise<Blob> {
    return this.blob(artifactPath(id, path));
  }

  /** A project's tests that failed or were flaky in its last builds; null without the route. */
  async projectTests(slug: string, signal?: AbortSignal): Promise<ProjectTests | null> {
    try {
      return await this.call(testEndpoints.project(slug), signal);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) return null;
      throw error;
    }
  }

  /** A build's test report (src/contract/tests.ts); null when the server has no tests route. */
  async buildTests(id: number, signal?: AbortSignal): Promise<BuildTests | null> {
    try {
      return await this.call(testEndpoints.build(id), signal);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) return null;
      throw error;
    }
  }

  // Tokens

  listTokens(signal?: AbortSignal): Promise<TokenInfo[]> {
    return this.call(endpoints.listTokens(), signal);
  }

  createToken(body: TokenCreate): Promise<TokenCreated> {
    return this.call(endpoints.createToken(body));
  }

  async revokeToken(id: number): Promise<void> {
    await this.call(endpoints.revokeToken(id));
  }

  // Schedules (src/contract/schedules.ts)

  listSchedules(slug: string, signal?: AbortSignal): Promise<Schedule[]> {
    return this.call(scheduleEndpoints.list(slug), signal);
  }

  createSchedule(slug: string, body: ScheduleCreate): Promise<Schedule> {
    return this.call(scheduleEndpoints.create(slug, body));
  }

  updateSchedule(slug: string, id: number, body: ScheduleUpdate): Promise<Schedule> {
    return this.call(scheduleEndpoints.update(slug, id, body));
  }

  async deleteSchedule(slug: string, id: number): Promise<void> {
    await this.call(scheduleEndpoints.remove(slug, id));
  }

  /** Whether the project's status badge is public, and where it is served. */
  getBadge(slug: string, signal?: AbortSignal): Promise<BadgeSettings> {
    return this.call(badgeEndpoints.get(slug), signal);
  }

  setBadgePublic(slug: string, isPublic: boolean): Promise<BadgeSettings> {
    return this.call(badgeEndpoints.set(slug, isPublic));
  }

  // What a build told the forge and by e-mail: a 404 (the project has neither set up, or the
  // server not these routes) is nothing to show.

  commitStatuses(slug: string, number: number, signal?: AbortSignal): Promise<CommitStatusDeliveryDto[]> {
    return this.orNone(this.call(notificationEndpoints.commitStatuses(slug, number), signal));
  }

  emailDeliveries(slug: string, number: number, signal?: AbortSignal): Promise<EmailDeliveryDto[]> {
    return this.orNone(this.call(notificationEndpoints.emailDeliveries(slug, number), signal));
  }

  private async orNone<T>(list: Promise<T[]>): Promise<T[]> {
    try {
      return await list;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return [];
      throw error;
    }
  }

  /** Sends one call of the API (src/contract/api.ts); a 204 answer resolves with nothing. */
  private async call<T>(endpoint: Endpoint<T>, signal?: AbortSignal): Promise<T> {
    const response = await this.send(endpoint.method, endpoint.path, endpoint.body, signal);
    if (response.status === 204) return undefined as T;
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
    const request = () =>
      fetch(`${API_PREFIX}${path}`, {
        method,
        headers,
        credentials: 'same-origin',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal !== undefined ? { signal } : {}),
      });
    let response: Response;
    try {
      response = await request();
    } catch (error) {
      // A read that the network dropped (Wi-Fi roaming, a VPN coming up: the browser's
      // ERR_NETWORK_CHANGED) is asked once more; a change is never sent twice.
      if (method !== 'GET' || signal?.aborted || !(error instanceof TypeError)) throw error;
      response = await request();
    }
    if (response.ok) return response;
    const decoded = decodeApiError(
      response.status,
      response.statusText,
      await response.text().catch(() => ''),
    );
    const error = new ApiError(response.status, decoded.code, decoded.message, decoded.details);
    if (response.status === 401) this.onUnauthorized();
    throw error;
  }
}
