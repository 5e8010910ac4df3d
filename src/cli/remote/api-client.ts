import {
  API_PREFIX,
  decodeApiError,
  endpoints,
  logStreamPath,
  projectPath,
  artifactPath,
  stepLogPath,
  type Artifact,
  type Build,
  type BuildDetail,
  type BuildQuery as ListQuery,
  type ClientErrorCode,
  type ApiErrorCode,
  type Endpoint,
  type LogLine,
  type LogPage,
  type Page,
  type Project,
  type ProjectCreate,
  type ProjectStats,
  type ProjectUpdate,
  type Queue,
  type SecretInfo,
  type TokenCreate,
  type TokenCreated,
  type TokenInfo,
  type TriggerRequest,
} from '../../contract/index.js';
import { scheduleEndpoints } from '../../contract/schedule-api.js';
import type { BuildTests, ProjectTests } from '../../contract/tests.js';
import { testEndpoints } from '../../contract/tests-api.js';
import type { Schedule, ScheduleCreate, ScheduleUpdate } from '../../contract/schedules.js';
import { cacheEndpoints, type Cache, type CacheDeleted } from '../../contract/caches.js';
import {
  emailEndpoints,
  type EmailDeliveryDto,
  type EmailSettingsUpdate,
  type EmailSettingsView,
} from '../../contract/email.js';
import { badgeEndpoints, type BadgeSettings } from '../../contract/badge-api.js';
import {
  commitStatusEndpoints,
  type CommitStatusSettingsUpdate,
  type CommitStatusView,
} from '../../contract/commit-status-api.js';
import { notificationEndpoints, type CommitStatusDeliveryDto } from '../../contract/notifications-api.js';
import { fromLogBatch } from '../../contract/log-stream.js';
import { followSse, type FollowSseOptions } from './sse.js';

/** The trigger's answer header for a build queued although its ref could not be checked. */
const WARNING_HEADER = 'x-slipway-warning';

/** Where the server listens when neither `--server` nor `SLIPWAY_SERVER` says otherwise. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/**
 * A failed API call. `status` is the HTTP status, or 0 when no answer came at all
 * (`code` is then `unreachable` or `timeout`). `message` is written for people.
 */
export class ApiClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode | ClientErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiClientError';
  }
}

/** The part of `GET|PATCH /projects/{owner}/{name}/hooks` the CLI reads (the secret is never shown). */
export interface HookSettingsDto {
  secretSet: boolean;
  buildTags: boolean;
  buildPullRequests: boolean;
}

/** Where to reach the server and with which token; see {@link resolveConnection}. */
export interface Connection {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  server: string;
  token: string | undefined;
}

/**
 * Picks the server and token: the flag wins over the environment, the environment over the
 * default. A server given as `host:port` gets `http://`, as people type it that way.
 * Throws a plain `Error` for a URL that cannot be parsed; the CLI turns it into a usage error.
 */
export function resolveConnection(
  flags: { server?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const given = flags.server ?? (env.SLIPWAY_SERVER || undefined) ?? DEFAULT_SERVER;
  const what = flags.server !== undefined ? '--server' : 'SLIPWAY_SERVER';
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`);
  } catch {
    throw new Error(`${what} "${given}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${what} "${given}": expected an http:// or https:// URL`);
  }
  const token = flags.token ?? (env.SLIPWAY_TOKEN || undefined);
  return { server: url.href.replace(/\/+$/, ''), token };
}

/** Filters of the build lists; `before` is the cursor of the previous page. */
export interface BuildQuery extends ListQuery {
  project?: string;
}

/** What the live log stream delivers, decoded. */
export type LogStreamEvent =
  { type: 'line'; line: LogLine } | { type: 'status'; build: Build } | { type: 'end' };

/** Options of {@link SlipwayClient.followLogs}: the reconnect policy of the SSE reader. */
export type FollowLogsOptions = Omit<
  FollowSseOptions,
  'headers' | 'fetch' | 'lastEventId' | 'toError' | 'unreachable'
> & {
  /** Resume after this seq (lines up to it are not sent again). */
  after?: number;
};

export interface ClientOptions extends Connection {
  /** Replaceable for tests; defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Gives up on a request without an answer after this long (not used for the live log). */
  timeoutMs?: number;
}

/**
 * Typed client of the Slipway REST API (`src/contract/`: the routes in `api.ts`, the shapes in
 * `dto.ts`), one method per route.
 * Every failure is an {@link ApiClientError} with a message fit to print as is.
 */
export class SlipwayClient {
  readonly server: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions) {
    this.server = options.server;
    this.token = options.token;
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  // Projects

  listProjects(query: { limit?: number; before?: string } = {}): Promise<Page<Project>> {
    return this.call(endpoints.listProjects(query));
  }

  /** Every project, following the pagination cursor to the end. */
  async listAllProjects(): Promise<Project[]> {
    const projects: Project[] = [];
    let before: string | undefined;
    do {
      const page = await this.listProjects(before === undefined ? {} : { before });
      projects.push(...page.items);
      before = page.nextCursor ?? undefined;
    } while (before !== undefined);
    return projects;
  }

  createProject(body: ProjectCreate): Promise<Project> {
    return this.call(endpoints.createProject(body));
  }

  getProject(slug: string): Promise<Project> {
    return this.call(endpoints.getProject(slug));
  }

  updateProject(slug: string, body: ProjectUpdate): Promise<Project> {
    return this.call(endpoints.updateProject(slug, body));
  }

  deleteProject(slug: string): Promise<void> {
    return this.call(endpoints.deleteProject(slug));
  }

  projectStats(slug: string): Promise<ProjectStats> {
    return this.call(endpoints.projectStats(slug));
  }

  // Builds

  /** One page of builds: of one project when `query.project` is set, else of all projects. */
  listBuilds(query: BuildQuery = {}): Promise<Page<Build>> {
    const { project, ...rest } = query;
    return this.call(endpoints.listBuilds(project, rest));
  }

  /**
   * Queues a build. The server checks that the branch (or tag) exists; when it could not ask
   * the repository it queues the build all the same and says why, which `onWarning` receives.
   */
  async trigger(slug: string, body: TriggerRequest, onWarning?: (text: string) => void): Promise<Build> {
    const endpoint = endpoints.trigger(slug, body);
    const response = await this.request(endpoint.method, endpoint.path, endpoint.body);
    const warning = response.headers.get(WARNING_HEADER);
    if (warning !== null && warning !== '') onWarning?.(warning);
    return this.parse(endpoint, response);
  }

  getProjectBuild(slug: string, number: number): Promise<BuildDetail> {
    return this.call(endpoints.getProjectBuild(slug, number));
  }

  getBuild(id: number): Promise<BuildDetail> {
    return this.call(endpoints.getBuild(id));
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

  /** Stored log lines with `seq > after`; `complete` tells whether more can ever follow. */
  logPage(id: number, query: { after?: number; limit?: number } = {}): Promise<LogPage> {
    return this.call(endpoints.logPage(id, query));
  }

  /**
   * The live log over Server-Sent Events, resuming across dropped connections and server
   * restarts with `Last-Event-ID`. Ends after the server's `end` event.
   */
  async *followLogs(id: number, options: FollowLogsOptions = {}): AsyncGenerator<LogStreamEvent> {
    const { after, ...sseOptions } = options;
    const events = followSse(`${this.server}${API_PREFIX}${logStreamPath(id)}`, {
      ...sseOptions,
      headers: this.headers(),
      fetch: this.fetchImpl,
      ...(after !== undefined && after > 0 ? { lastEventId: String(after) } : {}),
      toError: (response, body) =>
        errorFromResponse(response.status, response.statusText, body, this.token !== undefined),
      unreachable: (cause) => this.unreachable(cause),
    });
    for await (const event of events) {
      if (event.event === 'lines') {
        let lines: LogLine[];
        try {
          lines = fromLogBatch(parseData<unknown>(event.event, event.data));
        } catch (cause) {
          throw new ApiClientError(
            0,
            'bad_response',
            'the server sent a "lines" event that is not a batch',
            undefined,
            { cause },
          );
        }
        for (const line of lines) yield { type: 'line', line };
      } else if (event.event === 'line')
        yield { type: 'line', line: parseData<LogLine>(event.event, event.data) };
      else if (event.event === 'status')
        yield { type: 'status', build: parseData<Build>(event.event, event.data) };
      else if (event.event === 'end') {
        yield { type: 'end' };
        return;
      }
      // Unknown event types are for newer clients; skipping them keeps this one working.
    }
  }

  /** A finished step's log as plain text. */
  async stepLog(id: number, stage: string, step: string): Promise<string> {
    const response = await this.request('GET', stepLogPath(id, stage, step));
    return response.text();
  }

  // Queue, tokens

  queue(): Promise<Queue> {
    return this.call(endpoints.queue());
  }

  listTokens(): Promise<TokenInfo[]> {
    return this.call(endpoints.listTokens());
  }

  createToken(body: TokenCreate): Promise<TokenCreated> {
    return this.call(endpoints.createToken(body));
  }

  revokeToken(id: number): Promise<void> {
    return this.call(endpoints.revokeToken(id));
  }

  whoami(): Promise<TokenInfo> {
    return this.call(endpoints.whoami());
  }

  // Webhook settings

  /** Changes a project's webhook settings; `secret: null` removes the secret. */
  updateHookSettings(slug: string, body: { secret?: string | null }): Promise<HookSettingsDto> {
    return this.call({ method: 'PATCH', path: `${projectPath(slug)}/hooks`, body });
  }

  // Secrets (values go in, never come out)

  /** Secrets of a project (`owner/name`), or the global ones (`null`): names and times only. */
  listSecrets(project: string | null): Promise<SecretInfo[]> {
    return this.call(endpoints.listSecrets(project));
  }

  setSecret(
    project: string | null,
    name: string,
    body: { value: string; allowForks?: boolean },
  ): Promise<SecretInfo> {
    return this.call(endpoints.setSecret(project, name, body));
  }

  deleteSecret(project: string | null, name: string): Promise<void> {
    return this.call(endpoints.deleteSecret(project, name));
  }

  // Test reports

  buildTests(buildId: number, limit?: number): Promise<BuildTests> {
    return this.call(testEndpoints.build(buildId, limit));
  }

  projectTests(slug: string, query: { builds?: number; limit?: number } = {}): Promise<ProjectTests> {
    return this.call(testEndpoints.project(slug, query));
  }

  // Schedules

  listSchedules(slug: string): Promise<Schedule[]> {
    return this.call(scheduleEndpoints.list(slug));
  }

  createSchedule(slug: string, body: ScheduleCreate): Promise<Schedule> {
    return this.call(scheduleEndpoints.create(slug, body));
  }

  updateSchedule(slug: string, id: number, body: ScheduleUpdate): Promise<Schedule> {
    return this.call(scheduleEndpoints.update(slug, id, body));
  }

  deleteSchedule(slug: string, id: number): Promise<void> {
    return this.call(scheduleEndpoints.remove(slug, id));
  }

  // Step caches

  listCaches(slug: string): Promise<Cache[]> {
    return this.call(cacheEndpoints.list(slug));
  }

  /** One cache by id, every cache with a key, or all of the project's. */
  deleteCaches(slug: string, which: { id: number } | { key: string } | 'all'): Promise<CacheDeleted> {
    if (which === 'all') return this.call(cacheEndpoints.removeAll(slug));
    return this.call(
      'id' in which ? cacheEndpoints.remove(slug, which.id) : cacheEndpoints.removeKey(slug, which.key),
    );
  }

  // E-mail notifications

  getEmailSettings(slug: string): Promise<EmailSettingsView> {
    return this.call(emailEndpoints.get(slug));
  }

  setEmailSettings(slug: string, body: EmailSettingsUpdate): Promise<EmailSettingsView> {
    return this.call(emailEndpoints.set(slug, body));
  }

  emailDeliveries(slug: string): Promise<EmailDeliveryDto[]> {
    return this.call(emailEndpoints.deliveries(slug));
  }

  // Commit statuses on the forge

  getCommitStatusSettings(slug: string): Promise<CommitStatusView> {
    return this.call(commitStatusEndpoints.get(slug));
  }

  setCommitStatusSettings(slug: string, body: CommitStatusSettingsUpdate): Promise<CommitStatusView> {
    return this.call(commitStatusEndpoints.set(slug, body));
  }

  deleteCommitStatusSettings(slug: string): Promise<void> {
    return this.call(commitStatusEndpoints.remove(slug));
  }

  commitStatuses(slug: string, number: number): Promise<CommitStatusDeliveryDto[]> {
    return this.call(notificationEndpoints.commitStatuses(slug, number));
  }

  // Status badge

  getBadge(slug: string): Promise<BadgeSettings> {
    return this.call(badgeEndpoints.get(slug));
  }

  setBadgePublic(slug: string, isPublic: boolean): Promise<BadgeSettings> {
    return this.call(badgeEndpoints.set(slug, isPublic));
  }

  // Artifacts

  listArtifacts(buildId: number): Promise<Artifact[]> {
    return this.call(endpoints.listArtifacts(buildId));
  }

  /**
   * One artifact's bytes as a stream. The timeout covers only the wait for the answer's
   * headers: a large download may take as long as it takes.
   */
  async downloadArtifact(
    buildId: number,
    path: string,
  ): Promise<{ body: ReadableStream<Uint8Array>; size: number | undefined; sha256: string | undefined }> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('timeout', 'TimeoutError')),
      this.timeoutMs,
    );
    let response: Response;
    try {
      response = await this.request('GET', artifactPath(buildId, path), undefined, controller.signal);
    } finally {
      clearTimeout(timer);
    }
    if (response.body === null)
      throw new ApiClientError(response.status, 'bad_response', 'the server sent no artifact body');
    const length = response.headers.get('content-length');
    return {
      body: response.body,
      size: length === null ? undefined : Number(length),
      sha256: response.headers.get('x-slipway-sha256') ?? undefined,
    };
  }

  // Plumbing

  /** Sends one call of the API; a 204 answer resolves with nothing. */
  private async call<T>(endpoint: Endpoint<T>): Promise<T> {
    return this.parse(endpoint, await this.request(endpoint.method, endpoint.path, endpoint.body));
  }

  private async parse<T>(endpoint: Endpoint<T>, response: Response): Promise<T> {
    if (response.status === 204) return undefined as T;
    try {
      return (await response.json()) as T;
    } catch (cause) {
      throw new ApiClientError(
        response.status,
        'bad_response',
        `${endpoint.method} ${endpoint.path}: the server's answer is not JSON`,
        undefined,
        { cause },
      );
    }
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers = this.headers();
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.server}${API_PREFIX}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: signal ?? AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === 'TimeoutError') {
        throw new ApiClientError(
          0,
          'timeout',
          `the Slipway server at ${this.server} did not answer within ${this.timeoutMs / 1000}s`,
          undefined,
          { cause },
        );
      }
      throw this.unreachable(cause);
    }
    if (!response.ok)
      throw errorFromResponse(
        response.status,
        response.statusText,
        await response.text().catch(() => ''),
        this.token !== undefined,
      );
    return response;
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  private unreachable(cause: unknown): ApiClientError {
    return new ApiClientError(
      0,
      'unreachable',
      `cannot reach the Slipway server at ${this.server} (is \`slipway server\` running? set --server or SLIPWAY_SERVER)`,
      { cause: networkErrorCode(cause) },
      { cause },
    );
  }
}

export { projectPath } from '../../contract/index.js';

/** What to do when no token was given at all. */
export const NO_TOKEN_MESSAGE =
  'no API token: set SLIPWAY_TOKEN or pass --token (the server prints an admin token on its first ' +
  'start; `slipway token create` makes more)';

/**
 * Turns an error answer into an {@link ApiClientError}. 401 gets a fixed hint about the token,
 * since the server cannot know where the CLI took it from — one for no token at all
 * (`sentToken` false), another for a token the server refused; other statuses keep the
 * server's message (for 403 it names the role that is needed).
 */
export function errorFromResponse(
  status: number,
  statusText: string,
  body: string,
  sentToken = true,
): ApiClientError {
  const decoded = decodeApiError(status, statusText, body);
  if (status === 401) {
    return new ApiClientError(
      status,
      'unauthorized',
      sentToken
        ? 'the server refused the token (it is unknown, revoked or mistyped; check SLIPWAY_TOKEN or --token)'
        : NO_TOKEN_MESSAGE,
      decoded.details,
    );
  }
  return new ApiClientError(status, decoded.code, decoded.message, decoded.details);
}

/** The errno-style code under undici's `fetch failed` (which nests it one or two levels deep). */
function networkErrorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 4; depth += 1) {
    if (typeof current !== 'object') break;
    if ('code' in current && typeof current.code === 'string') return current.code;
    if ('errors' in current && Array.isArray(current.errors)) return networkErrorCode(current.errors[0]);
    current = 'cause' in current ? current.cause : undefined;
  }
  return undefined;
}

function parseData<T>(event: string, data: string): T {
  try {
    return JSON.parse(data) as T;
  } catch (cause) {
    throw new ApiClientError(
      0,
      'bad_response',
      `the server sent a "${event}" event that is not JSON`,
      undefined,
      { cause },
    );
  }
}
