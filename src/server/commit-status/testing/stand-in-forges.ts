import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import type { FormatsPlugin } from 'ajv-formats';
import type { ForgeKind } from '../../../store/commit-status.js';

/**
 * In-test HTTP servers standing in for the commit-status endpoint of GitHub, GitLab and
 * Gitea/Forgejo. Every request is checked against the forge's schema (method, path, auth
 * header and scheme, content type, JSON body) and recorded with what was wrong with it;
 * tests assert `violations` is empty and read `requests` for the sequence.
 *
 * - GitHub: the operations `repos/create-commit-status`, `checks/create` and `checks/update`
 *   of GitHub's own OpenAPI description (`@octokit/openapi`, `api.github.com.json`): their
 *   path parameters and request body schemas, compiled by Ajv as published (OpenAPI 3.0's
 *   `nullable` included), plus no fields beyond the schema's properties (the published schema
 *   does not forbid them; GitHub ignores them, which would hide a misspelt field). Check runs
 *   are answered as for a personal access token (403) unless the stand-in is told its token
 *   is a GitHub App's (`{ checks: true }`); their ids are above 2^32, as GitHub's are now.
 * - GitLab and Gitea: JSON Schemas written here from their documented APIs (neither publishes
 *   an OpenAPI file on npm); the documents are cited next to each.
 */

const require = createRequire(import.meta.url);

export interface StandInRequest {
  method: string;
  /** The raw request target, percent-encoding kept (GitLab's project id is `group%2Fname`). */
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** When it arrived (epoch ms), for retry gaps. */
  at: number;
  /** The check run it created or updated. */
  checkRunId?: number;
}

/** What the stand-in answers the next request with (default 201 and the forge's usual body). */
export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

interface GithubOperation {
  body: ValidateFunction;
  properties: string[];
  params: Record<string, { validate: ValidateFunction; integer: boolean }>;
}
/** GitHub's operations out of its OpenAPI description, compiled once per process. */
const github = new Map<string, GithubOperation>();
const GITHUB_OPERATIONS = {
  'repos/create-commit-status': ['/repos/{owner}/{repo}/statuses/{sha}', 'post'],
  'checks/create': ['/repos/{owner}/{repo}/check-runs', 'post'],
  'checks/update': ['/repos/{owner}/{repo}/check-runs/{check_run_id}', 'patch'],
} as const;
type GithubOperationId = keyof typeof GITHUB_OPERATIONS;

function ajv(): Ajv {
  const instance = new Ajv({ strict: false, allErrors: true });
  (ajvFormats.default as unknown as FormatsPlugin)(instance);
  return instance;
}

function githubOperation(id: GithubOperationId = 'repos/create-commit-status'): GithubOperation {
  const known = github.get(id);
  if (known) return known;
  const file = require.resolve('@octokit/openapi/generated/api.github.com.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as {
    paths: Record<string, Record<string, OpenApiOperation>>;
    components: { parameters: Record<string, OpenApiParameter> };
  };
  const [path, method] = GITHUB_OPERATIONS[id];
  const operation = spec.paths[path]?.[method];
  if (operation?.operationId !== id) throw new Error(`${id} is not in @octokit/openapi`);
  const compiler = ajv();
  const schema = operation.requestBody.content['application/json']?.schema;
  if (schema === undefined) throw new Error(`${id} takes no JSON body in @octokit/openapi`);
  const params: GithubOperation['params'] = {};
  for (const p of operation.parameters) {
    const parameter = '$ref' in p ? spec.components.parameters[p.$ref.split('/').at(-1)!]! : p;
    if (parameter.in === 'path')
      params[parameter.name] = {
        validate: compiler.compile(parameter.schema),
        integer: parameter.schema.type === 'integer',
      };
  }
  const compiled = {
    body: compiler.compile(schema),
    properties: Object.keys(schema.properties ?? {}),
    params,
  };
  github.set(id, compiled);
  return compiled;
}

interface OpenApiParameter {
  name: string;
  in: string;
  schema: { type?: string };
}
interface OpenApiOperation {
  operationId: string;
  parameters: ({ $ref: string } | OpenApiParameter)[];
  requestBody: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> };
}

/**
 * GitLab: `POST /projects/:id/statuses/:sha`, "Set the pipeline status of a commit",
 * https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit — attributes
 * `state` (required: pending, running, success, failed, canceled, skipped), `ref`, `name` or
 * `context`, `target_url`, `description`, `coverage`, `pipeline_id`. Written from that page.
 */
const GITLAB_BODY = {
  type: 'object',
  required: ['state'],
  additionalProperties: false,
  properties: {
    state: { enum: ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'] },
    ref: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    context: { type: 'string', minLength: 1 },
    target_url: { type: 'string', format: 'uri' },
    description: { type: 'string' },
    coverage: { type: 'number' },
    pipeline_id: { type: 'integer' },
  },
};

/**
 * Gitea and Forgejo: `POST /repos/{owner}/{repo}/statuses/{sha}` with a `CreateStatusOption`,
 * https://gitea.com/api/swagger#/repository/repoCreateStatus (Forgejo the same:
 * https://codeberg.org/api/swagger#/repository/repoCreateStatus) — `context`, `description`,
 * `target_url` strings and `state` a `CommitStatusState` (pending, success, error, failure,
 * warning). Written from those pages.
 */
const GITEA_BODY = {
  type: 'object',
  required: ['state'],
  additionalProperties: false,
  properties: {
    state: { enum: ['pending', 'success', 'error', 'failure', 'warning'] },
    context: { type: 'string' },
    description: { type: 'string' },
    target_url: { type: 'string', format: 'uri' },
  },
};

const SHA = /^[0-9a-f]{40}$/;

export class StandInForge {
  readonly requests: StandInRequest[] = [];
  readonly violations: string[] = [];
  /** Answers for the next requests, in order; then 201. */
  readonly script: ScriptedAnswer[] = [];
  /** GitHub check runs made, by id. */
  readonly checkRuns = new Map<number, { name: string; status: unknown; conclusion: unknown }>();
  /** Whether GitHub would let the token create check runs (a GitHub App's installation token). */
  checks: boolean;
  private readonly server: Server;
  /** GitLab's or Gitea's body schema (GitHub's operations are looked up per request). */
  private readonly validate: ValidateFunction;
  url = '';

  constructor(
    readonly kind: ForgeKind,
    /** The token the forge accepts; anything else gets its 401. */
    readonly token: string,
    options: { checks?: boolean } = {},
  ) {
    this.checks = options.checks ?? false;
    this.validate =
      kind === 'github'
        ? githubOperation().body
        : ajv().compile(kind === 'gitlab' ? GITLAB_BODY : GITEA_BODY);
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        const problems: string[] = [];
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          problems.push(`body is not JSON: ${text.slice(0, 80)}`);
        }
        const got: StandInRequest = {
          method: request.method ?? '',
          path: request.url ?? '',
          headers: request.headers,
          body,
          at: Date.now(),
        };
        this.requests.push(got);
        problems.push(...this.check(got));
        this.violations.push(...problems.map((p) => `${got.method} ${got.path}: ${p}`));
        const send = (status: number, payload: unknown, headers: Record<string, string> = {}) =>
          response
            .writeHead(status, { 'content-type': 'application/json', ...headers })
            .end(JSON.stringify(payload));
        if (!this.authorized(got.headers)) {
          // GitHub and Gitea say {message}, GitLab {message: "401 Unauthorized"}.
          return send(401, { message: this.kind === 'gitlab' ? '401 Unauthorized' : 'Bad credentials' });
        }
        const next = this.script.shift();
        if (next !== undefined)
          return send(next.status, next.body ?? { message: `status ${next.status}` }, next.headers);
        if (problems.length > 0) return send(422, { message: 'Validation Failed', errors: problems });
        if (this.kind === 'github' && got.path.includes('/check-runs')) return this.answerCheckRun(got, send);
        send(201, { id: this.requests.length, state: body.state, context: body.context ?? body.name });
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The API base a project's settings name (`apiUrl`). */
  get apiUrl(): string {
    return this.kind === 'github'
      ? `${this.url}/api/v3`
      : this.kind === 'gitlab'
        ? `${this.url}/api/v4`
        : `${this.url}/api/v1`;
  }

  /** Requests for one context, in order. */
  context(name: string): StandInRequest[] {
    return this.requests.filter((r) => (r.body.context ?? r.body.name) === name);
  }

  /** Requests that created or updated the check run named `name` (answered ones), in order. */
  checkRun(name: string): StandInRequest[] {
    return this.requests.filter(
      (r) => r.checkRunId !== undefined && this.checkRuns.get(r.checkRunId)?.name === name,
    );
  }

  reset(): void {
    this.requests.length = 0;
    this.violations.length = 0;
    this.script.length = 0;
    this.checkRuns.clear();
  }

  /** GitHub's answers to creating and updating a check run, refused unless `checks`. */
  private answerCheckRun(
    got: StandInRequest,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
  ): void {
    if (!this.checks)
      return send(403, {
        message: 'You must authenticate via a GitHub App.',
        documentation_url: 'https://docs.github.com/rest/checks/runs#create-a-check-run',
      });
    const { body } = got;
    const patched = /\/check-runs\/(\d+)$/.exec(got.path);
    let id: number;
    if (patched === null) {
      id = 30_000_000_000 + this.requests.length;
      this.checkRuns.set(id, { name: String(body.name), status: undefined, conclusion: undefined });
    } else {
      id = Number(patched[1]);
      if (!this.checkRuns.has(id)) return send(404, { message: 'Not Found' });
    }
    const run = this.checkRuns.get(id)!;
    run.status = body.conclusion !== undefined ? 'completed' : (body.status ?? run.status ?? 'queued');
    run.conclusion = body.conclusion ?? run.conclusion ?? null;
    got.checkRunId = id;
    send(patched === null ? 201 : 200, { id, ...body, ...run, app: { slug: 'slipway' } });
  }

  private authorized(headers: IncomingHttpHeaders): boolean {
    if (this.kind === 'gitlab') return headers['private-token'] === this.token;
    if (this.kind === 'github') return headers.authorization === `Bearer ${this.token}`;
    return headers.authorization === `token ${this.token}`;
  }

  private check(request: StandInRequest): string[] {
    const problems: string[] = [];
    if (!String(request.headers['content-type']).startsWith('application/json'))
      problems.push(`content-type ${String(request.headers['content-type'])}`);
    const base = new URL(this.apiUrl).pathname;
    const rest = request.path.startsWith(`${base}/`) ? request.path.slice(base.length) : undefined;
    if (rest === undefined) return [...problems, `path not under ${base}`];
    if (this.kind === 'github' && /^\/repos\/[^/]+\/[^/]+\/check-runs(\/|$)/.test(rest))
      return [...problems, ...this.checkGithub(request, rest)];
    if (request.method !== 'POST') problems.push(`method ${request.method}, not POST`);
    // GitHub's body is checked with its operation's other rules, below.
    if (this.kind !== 'github' && !this.validate(request.body))
      problems.push(`body ${JSON.stringify(request.body)}: ${JSON.stringify(this.validate.errors)}`);
    if (this.kind === 'gitlab') {
      // `:id` is the project's id or its URL-encoded path: one segment, `/` as %2F.
      const match = /^\/projects\/([^/]+)\/statuses\/([^/]+)$/.exec(rest);
      if (!match) return [...problems, `path ${rest} is not /projects/:id/statuses/:sha`];
      if (!/^\d+$/.test(match[1]!) && !match[1]!.includes('%2F'))
        problems.push(`project id ${match[1]} is not URL-encoded`);
      if (!SHA.test(match[2]!)) problems.push(`sha ${match[2]}`);
      if (this.kind === 'gitlab' && request.headers.authorization !== undefined)
        problems.push('both PRIVATE-TOKEN and Authorization');
      return problems;
    }
    const match = /^\/repos\/([^/]+)\/([^/]+)\/statuses\/([^/]+)$/.exec(rest);
    if (!match) return [...problems, `path ${rest} is not /repos/{owner}/{repo}/statuses/{sha}`];
    if (!SHA.test(match[3]!)) problems.push(`sha ${match[3]}`);
    if (this.kind === 'github') {
      problems.push(
        ...githubCommon(request, 'repos/create-commit-status', {
          owner: match[1]!,
          repo: match[2]!,
          sha: match[3]!,
        }),
      );
      const description = request.body.description;
      if (typeof description === 'string' && description.length > 140)
        problems.push(`description longer than GitHub's 140 characters`);
    }
    return problems;
  }

  /** `POST …/check-runs` (`checks/create`) or `PATCH …/check-runs/{check_run_id}` (`checks/update`). */
  private checkGithub(request: StandInRequest, rest: string): string[] {
    const create = /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/.exec(rest);
    const update = /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/([^/]+)$/.exec(rest);
    if (create !== null && request.method === 'POST') {
      const problems = githubCommon(request, 'checks/create', { owner: create[1]!, repo: create[2]! });
      if (typeof request.body.head_sha !== 'string' || !SHA.test(request.body.head_sha))
        problems.push(`head_sha ${String(request.body.head_sha)}`);
      return problems;
    }
    if (update !== null && request.method === 'PATCH') {
      return githubCommon(request, 'checks/update', {
        owner: update[1]!,
        repo: update[2]!,
        check_run_id: update[3]!,
      });
    }
    return [`${request.method} ${rest} is neither checks/create nor checks/update`];
  }
}

/** What every GitHub operation checks: path parameters, body schema, no unknown fields, headers. */
function githubCommon(
  request: StandInRequest,
  id: GithubOperationId,
  path: Record<string, string>,
): string[] {
  const problems: string[] = [];
  const op = githubOperation(id);
  for (const [name, value] of Object.entries(path)) {
    const param = op.params[name];
    const decoded = decodeURIComponent(value);
    if (!param?.validate(param.integer && /^\d+$/.test(decoded) ? Number(decoded) : decoded))
      problems.push(`path parameter ${name}`);
  }
  if (!op.body(request.body))
    problems.push(
      `${id} body ${JSON.stringify(request.body).slice(0, 300)}: ${JSON.stringify(op.body.errors)}`,
    );
  const extra = Object.keys(request.body).filter((k) => !op.properties.includes(k));
  if (extra.length > 0) problems.push(`fields not in the schema: ${extra.join(', ')}`);
  if (request.headers.accept !== 'application/vnd.github+json')
    problems.push(`accept ${String(request.headers.accept)}`);
  if (request.headers['x-github-api-version'] !== '2022-11-28') problems.push('no X-GitHub-Api-Version');
  return problems;
}
