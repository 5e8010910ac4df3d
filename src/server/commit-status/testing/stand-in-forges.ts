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
 * - GitHub: the operation `repos/create-commit-status` of GitHub's own OpenAPI description
 *   (`@octokit/openapi`, `api.github.com.json`): its path parameters and its request body
 *   schema, compiled by Ajv as published (OpenAPI 3.0's `nullable` included), plus no fields
 *   beyond the schema's properties (the published schema does not forbid them; GitHub ignores
 *   them, which would hide a misspelt field).
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
}

/** What the stand-in answers the next request with (default 201 and the forge's usual body). */
export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** GitHub's statuses operation out of its OpenAPI description, compiled once per process. */
let github:
  { body: ValidateFunction; properties: string[]; params: Record<string, ValidateFunction> } | undefined;

function ajv(): Ajv {
  const instance = new Ajv({ strict: false, allErrors: true });
  (ajvFormats.default as unknown as FormatsPlugin)(instance);
  return instance;
}

function githubOperation() {
  if (github) return github;
  const file = require.resolve('@octokit/openapi/generated/api.github.com.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as {
    paths: Record<string, Record<string, OpenApiOperation>>;
    components: { parameters: Record<string, OpenApiParameter> };
  };
  const operation = spec.paths['/repos/{owner}/{repo}/statuses/{sha}']?.post;
  if (operation?.operationId !== 'repos/create-commit-status')
    throw new Error('repos/create-commit-status is not in @octokit/openapi');
  const compiler = ajv();
  const schema = operation.requestBody.content['application/json']?.schema;
  if (schema === undefined)
    throw new Error('repos/create-commit-status takes no JSON body in @octokit/openapi');
  const params: Record<string, ValidateFunction> = {};
  for (const p of operation.parameters) {
    const parameter = '$ref' in p ? spec.components.parameters[p.$ref.split('/').at(-1)!]! : p;
    if (parameter.in === 'path') params[parameter.name] = compiler.compile(parameter.schema);
  }
  github = { body: compiler.compile(schema), properties: Object.keys(schema.properties ?? {}), params };
  return github;
}

interface OpenApiParameter {
  name: string;
  in: string;
  schema: object;
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
  private readonly server: Server;
  private readonly validate: ValidateFunction;
  url = '';

  constructor(
    readonly kind: ForgeKind,
    /** The token the forge accepts; anything else gets its 401. */
    readonly token: string,
  ) {
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

  reset(): void {
    this.requests.length = 0;
    this.violations.length = 0;
    this.script.length = 0;
  }

  private authorized(headers: IncomingHttpHeaders): boolean {
    if (this.kind === 'gitlab') return headers['private-token'] === this.token;
    if (this.kind === 'github') return headers.authorization === `Bearer ${this.token}`;
    return headers.authorization === `token ${this.token}`;
  }

  private check(request: StandInRequest): string[] {
    const problems: string[] = [];
    if (request.method !== 'POST') problems.push(`method ${request.method}, not POST`);
    if (!String(request.headers['content-type']).startsWith('application/json'))
      problems.push(`content-type ${String(request.headers['content-type'])}`);
    if (!this.validate(request.body))
      problems.push(`body ${JSON.stringify(request.body)}: ${JSON.stringify(this.validate.errors)}`);
    const base = new URL(this.apiUrl).pathname;
    const rest = request.path.startsWith(`${base}/`) ? request.path.slice(base.length) : undefined;
    if (rest === undefined) return [...problems, `path not under ${base}`];
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
      const op = githubOperation();
      for (const [name, value] of [
        ['owner', match[1]],
        ['repo', match[2]],
        ['sha', match[3]],
      ] as const) {
        const validate = op.params[name];
        if (!validate?.(decodeURIComponent(value!))) problems.push(`path parameter ${name}`);
      }
      const extra = Object.keys(request.body).filter((k) => !op.properties.includes(k));
      if (extra.length > 0) problems.push(`fields not in the schema: ${extra.join(', ')}`);
      if (request.headers.accept !== 'application/vnd.github+json')
        problems.push(`accept ${String(request.headers.accept)}`);
      if (request.headers['x-github-api-version'] !== '2022-11-28') problems.push('no X-GitHub-Api-Version');
      const description = request.body.description;
      if (typeof description === 'string' && description.length > 140)
        problems.push(`description longer than GitHub's 140 characters`);
    }
    return problems;
  }
}
