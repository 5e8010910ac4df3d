import type { IncomingHttpHeaders } from 'node:http';
import type { Kysely } from 'kysely';
import { getBuild, getProjectBySlug, type Build, type Database, type Project } from '../../store/index.js';
import { isCommitSha, isSafeRefName } from '../sources/git-checkout.js';
import { ControlError, type BuildControl } from '../scheduler/types.js';
import { HookError, errorBody } from './errors.js';
import { text } from './forges/payload.js';
import type { ForgeAdapter, HookAction } from './forges/types.js';
import { projectsForRepo } from './repo-url.js';
import {
  claimDelivery,
  finishDelivery,
  getHookSettings,
  hookSecret,
  setHeadRepoFork,
  type Delivery,
  type SecretSealer,
} from './store.js';

/** Counts refused deliveries; `Metrics` of `../metrics.ts` fits. */
export interface RejectionCounter {
  webhookRejected(forge: string, reason: string): void;
}

export interface ReceiveDeps {
  db: Kysely<Database>;
  control: BuildControl;
  metrics?: RejectionCounter;
  /** Secret for projects that set none of their own; without either, their deliveries are refused. */
  defaultSecret?: string;
  /** Opens webhook secrets stored encrypted. */
  sealer?: SecretSealer;
}

/** One delivery as it arrived: headers, the raw body bytes (signatures cover exactly these) and the query. */
export interface HookRequest {
  headers: IncomingHttpHeaders;
  raw: Buffer | undefined;
  query: { project?: string | undefined };
}

export interface HookReply {
  status: number;
  body: unknown;
}

/** The build a delivery started, as the answer names it. */
export interface StartedBuild {
  id: number;
  number: number;
  project: string;
}

/**
 * Handles one forge delivery, in this order: decode the body (400), find the project by the
 * repository the payload names or by `?project=` (404, or 409 when several match), check the
 * signature with the project's secret (401: nothing is recorded, only counted), understand the
 * event (400 for a payload that lacks what it must carry), claim the delivery id (a repeat
 * answers 200 with the first answer's build), then build or say why not (202).
 */
export async function receiveDelivery(
  deps: ReceiveDeps,
  forge: ForgeAdapter,
  request: HookRequest,
): Promise<HookReply> {
  try {
    return await receive(deps, forge, request);
  } catch (error) {
    if (error instanceof HookError) {
      if (error.reason !== undefined) deps.metrics?.webhookRejected(forge.name, error.reason);
      return { status: error.statusCode, body: errorBody(error.code, error.message, error.details) };
    }
    throw error;
  }
}

async function receive(deps: ReceiveDeps, forge: ForgeAdapter, request: HookRequest): Promise<HookReply> {
  const { db } = deps;
  const payload = decodeBody(request.raw, request.headers['content-type']);
  const project = await projectOf(db, forge, payload, request.query.project);
  await authenticate(deps, forge, project, request);

  const event = forge.eventName(request.headers, payload);
  if (event === undefined) {
    throw new HookError(
      400,
      'invalid_request',
      `the delivery names no event (expected the ${eventHeader(forge)} header)`,
      'invalid_payload',
    );
  }
  const action = forge.parse(event, payload);
  if (action.kind === 'ping') return { status: 200, body: { message: 'pong', project: project.slug } };

  const deliveryId = forge.deliveryId(request.headers);
  let claim: number | undefined;
  if (deliveryId !== undefined) {
    const claimed = await claimDelivery(db, { forge: forge.name, deliveryId, projectId: project.id, event });
    if (!claimed.claimed) return repeated(db, claimed.earlier, project);
    claim = claimed.id;
  }
  const delivery = deliveryId ?? null;
  try {
    const decision = await decide(db, project, action);
    if ('ignore' in decision) {
      if (claim !== undefined)
        await finishDelivery(db, claim, { outcome: 'ignored', message: decision.ignore });
      deps.metrics?.webhookRejected(forge.name, decision.reason);
      return { status: 202, body: { ignored: decision.ignore, project: project.slug, delivery } };
    }
    const build = await startBuild(deps, forge, project, decision.action);
    if (claim !== undefined) await finishDelivery(db, claim, { outcome: 'build', buildId: build.id });
    return { status: 201, body: { build: startedBuild(build, project), delivery } };
  } catch (error) {
    if (claim !== undefined) {
      const refused = error instanceof HookError || error instanceof ControlError;
      // A refusal is final; any other failure (database down) leaves the delivery to a redelivery.
      if (refused) await finishDelivery(db, claim, { outcome: 'rejected', message: error.message });
      else
        await db
          .deleteFrom('webhook_deliveries')
          .where('id', '=', claim)
          .execute()
          .catch(() => undefined);
    }
    if (error instanceof ControlError) {
      const status = { not_found: 404, conflict: 409, invalid: 400 }[error.code];
      const code = { not_found: 'not_found', conflict: 'conflict', invalid: 'invalid_ref' }[error.code] as
        'not_found' | 'conflict' | 'invalid_ref';
      throw new HookError(status, code, error.message, error.code === 'invalid' ? 'invalid_ref' : 'refused');
    }
    throw error;
  }
}

function decodeBody(raw: Buffer | undefined, contentType: string | undefined): unknown {
  if (raw === undefined || raw.length === 0)
    throw new HookError(400, 'invalid_json', 'the request body is empty', 'invalid_payload');
  let json = raw.toString('utf8');
  if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    // GitHub's "application/x-www-form-urlencoded" content type: the JSON is the `payload` field.
    const form = new URLSearchParams(json).get('payload');
    if (form === null)
      throw new HookError(
        400,
        'invalid_json',
        'the form-encoded body has no "payload" field',
        'invalid_payload',
      );
    json = form;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (error) {
    throw new HookError(
      400,
      'invalid_json',
      `the request body is not valid JSON: ${(error as Error).message}`,
      'invalid_payload',
    );
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new HookError(400, 'invalid_json', 'the request body must be a JSON object', 'invalid_payload');
  }
  return payload;
}

async function projectOf(
  db: Kysely<Database>,
  forge: ForgeAdapter,
  payload: unknown,
  query: string | undefined,
): Promise<Project> {
  const slug = query ?? (forge.name === 'generic' ? text(payload, 'project') : undefined);
  if (slug !== undefined) {
    const project = await getProjectBySlug(db, slug);
    if (!project)
      throw new HookError(404, 'not_found', `project ${slug} not found`, 'unknown_project', {
        project: slug,
      });
    return project;
  }
  const urls = forge.repoUrls(payload);
  if (urls.length === 0) {
    throw new HookError(
      400,
      'invalid_request',
      'the payload names no repository; add ?project=owner/name to the hook URL',
      'invalid_payload',
    );
  }
  const projects = await projectsForRepo(db, urls);
  if (projects.length === 0) {
    throw new HookError(404, 'not_found', `no project builds the repository ${urls[0]}`, 'unknown_project', {
      repository: urls,
    });
  }
  if (projects.length > 1) {
    const slugs = projects.map((p) => p.slug);
    throw new HookError(
      409,
      'conflict',
      `several projects build ${urls[0]} (${slugs.join(', ')}); add ?project=owner/name to the hook URL`,
      'ambiguous_project',
      { projects: slugs },
    );
  }
  return projects[0]!;
}

async function authenticate(
  deps: ReceiveDeps,
  forge: ForgeAdapter,
  project: Project,
  request: HookRequest,
): Promise<void> {
  const secret = (await hookSecret(deps.db, project.id, deps.sealer)) ?? deps.defaultSecret;
  if (secret === undefined) {
    throw new HookError(
      401,
      'unauthorized',
      `project ${project.slug} has no webhook secret, so no delivery for it can be verified; set one first`,
      'no_secret',
    );
  }
  const verdict = await forge.verify(request.headers, request.raw!, secret);
  if (verdict === 'missing') {
    throw new HookError(
      401,
      'unauthorized',
      `the delivery is not signed (expected the ${signatureHeader(forge)} header)`,
      'missing_signature',
    );
  }
  if (verdict === 'bad') {
    throw new HookError(
      401,
      'unauthorized',
      `the ${signatureHeader(forge)} header does not match the project's webhook secret`,
      'bad_signature',
    );
  }
}

type Decision = { ignore: string; reason: string } | { action: Extract<HookAction, { kind: 'build' }> };

async function decide(
  db: Kysely<Database>,
  project: Project,
  action: Exclude<HookAction, { kind: 'ping' }>,
): Promise<Decision> {
  if (action.kind === 'ignore') return { ignore: action.why, reason: 'ignored_event' };
  checkRefs(action);
  const settings = await getHookSettings(db, project.id);
  if (action.event === 'tag') {
    return settings.buildTags
      ? { action }
      : { ignore: `tag builds are switched off for ${project.slug}`, reason: 'tags_off' };
  }
  if (action.event === 'pull_request') {
    return settings.buildPullRequests
      ? { action }
      : { ignore: `pull request builds are switched off for ${project.slug}`, reason: 'pull_requests_off' };
  }
  let filter: RegExp;
  try {
    filter = new RegExp(`^(?:${project.branchFilter})$`);
  } catch {
    return {
      ignore: `the branch filter of ${project.slug} is not a valid regular expression`,
      reason: 'branch_filter',
    };
  }
  if (!filter.test(action.branch)) {
    return {
      ignore: `branch "${action.branch}" does not match the branch filter "${project.branchFilter}"`,
      reason: 'branch_filter',
    };
  }
  return { action };
}

/** Refuses names that git would not take as plain refs before anything is recorded as a build. */
function checkRefs(action: Extract<HookAction, { kind: 'build' }>): void {
  const bad = (what: string, value: string) =>
    new HookError(
      400,
      'invalid_ref',
      `invalid ${what} ${JSON.stringify(value)}: not a plain git ref name`,
      'invalid_ref',
      { [what]: value },
    );
  if (!isSafeRefName(action.branch)) throw bad('branch', action.branch);
  if (action.tag !== undefined && !isSafeRefName(action.tag)) throw bad('tag', action.tag);
  if (action.commit !== undefined && !isCommitSha(action.commit)) throw bad('commit', action.commit);
}

async function startBuild(
  deps: ReceiveDeps,
  forge: ForgeAdapter,
  project: Project,
  action: Extract<HookAction, { kind: 'build' }>,
): Promise<Build> {
  const build = await deps.control.trigger(project, {
    branch: action.branch,
    ...(action.commit !== undefined && { commit: action.commit }),
    ...(action.tag !== undefined && { tag: action.tag }),
    event: action.event,
    trigger: 'webhook',
    triggeredBy: action.sender === undefined ? `${forge.name} webhook` : `${forge.name}:${action.sender}`,
  });
  if (action.fork !== undefined) await setHeadRepoFork(deps.db, build.id, action.fork);
  return build;
}

async function repeated(db: Kysely<Database>, earlier: Delivery, project: Project): Promise<HookReply> {
  const delivery = earlier.deliveryId;
  if (earlier.outcome === 'build' && earlier.buildId !== null) {
    const build = await getBuild(db, earlier.buildId);
    if (build)
      return { status: 200, body: { build: startedBuild(build, project), delivery, duplicate: true } };
  }
  if (earlier.outcome === 'processing') {
    return {
      status: 202,
      body: {
        ignored: `delivery ${delivery} is being handled already`,
        project: project.slug,
        delivery,
        duplicate: true,
      },
    };
  }
  const before = earlier.message ? `: ${earlier.message}` : '';
  return {
    status: 200,
    body: {
      ignored: `delivery ${delivery} was handled before (${earlier.outcome}${before})`,
      project: project.slug,
      delivery,
      duplicate: true,
    },
  };
}

function startedBuild(build: Build, project: Project): StartedBuild {
  return { id: build.id, number: build.number, project: project.slug };
}

function signatureHeader(forge: ForgeAdapter): string {
  return {
    github: 'X-Hub-Signature-256',
    gitlab: 'X-Gitlab-Token',
    gitea: 'X-Gitea-Signature',
    generic: 'X-Slipway-Signature',
  }[forge.name];
}

function eventHeader(forge: ForgeAdapter): string {
  return {
    github: 'X-GitHub-Event',
    gitlab: 'X-Gitlab-Event',
    gitea: 'X-Gitea-Event',
    generic: '"event" field',
  }[forge.name];
}
