import type { IncomingHttpHeaders } from 'node:http';
import type { Kysely } from 'kysely';
import { getBuild, getProjectBySlug, type Build, type Database, type Project } from '../../store/index.js';
import { compileUserRegex } from '../../pipeline/user-regex.js';
import { isCommitSha, isSafeRefName } from '../sources/git-checkout.js';
import { ControlError, type BuildControl } from '../scheduler/types.js';
import { HookError, errorBody } from './errors.js';
import { decodeBody, DEFAULT_UNNAMED_PARSE_LIMIT } from './body.js';
import { header, text } from './forges/payload.js';
import { payloadCommit, payloadPullRequest } from './forges/commit-info.js';
import type { ForgeAdapter, HookAction } from './forges/types.js';
import { projectsForRepo } from './repo-url.js';
import {
  claimDelivery,
  finishDelivery,
  getHookSettings,
  hookSecret,
  releaseDelivery,
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
  /** Largest delivery without `?project=` that is parsed before verification; default 1 MiB. */
  unnamedParseLimit?: number;
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
 * Handles one forge delivery, in this order: a missing signature (401); the project from
 * `?project=` (the recommended form: then the raw bytes are verified before anything is
 * parsed), else from the payload, read only when it is at most `unnamedParseLimit` bytes
 * (413 otherwise); the signature checked with each candidate's secret (401, the same for an
 * unknown project; 409 when several projects verify it); the body decoded (400); the event
 * understood (400 for a payload that lacks what it must carry); the delivery id claimed (a
 * repeat answers 200 with the first answer's build); then a build, or why not (202).
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
  const raw = request.raw;
  if (raw === undefined || raw.length === 0)
    throw new HookError(400, 'invalid_json', 'the request body is empty', 'invalid_payload');
  // A missing signature is told apart without looking at any project: that reveals nothing.
  if (signatureOf(forge, request.headers) === undefined) {
    throw new HookError(
      401,
      'unauthorized',
      `the delivery is not signed (expected the ${signatureHeader(forge)} header)`,
      'missing_signature',
    );
  }
  let payload: object | undefined;
  let candidates: Project[];
  if (request.query.project !== undefined) {
    const named = await getProjectBySlug(db, request.query.project);
    candidates = named ? [named] : [];
  } else {
    // Nothing in the URL says whose secret to check with: read the payload first, bounded.
    const limit = deps.unnamedParseLimit ?? DEFAULT_UNNAMED_PARSE_LIMIT;
    if (raw.length > limit) {
      throw new HookError(
        413,
        'payload_too_large',
        `a delivery over ${limit} bytes must name its project in the hook URL: add ?project=owner/name`,
        'too_large',
      );
    }
    payload = decodeBody(raw, request.headers['content-type']);
    candidates = await candidatesOf(db, forge, payload);
  }
  const project = await authenticate(deps, forge, candidates, request);
  payload ??= decodeBody(raw, request.headers['content-type']);

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
    const build = await startBuild(deps, forge, project, decision.action, payload);
    if (claim !== undefined) await finishDelivery(db, claim, { outcome: 'build', buildId: build.id });
    return { status: 201, body: { build: startedBuild(build, project), delivery } };
  } catch (error) {
    if (claim !== undefined) {
      const refused = error instanceof HookError || error instanceof ControlError;
      // A refusal is final; any other failure (database down) leaves the delivery to a redelivery.
      if (refused) await finishDelivery(db, claim, { outcome: 'rejected', message: error.message });
      else await releaseDelivery(db, claim).catch(() => undefined);
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

/**
 * The projects a delivery that does not name one in its URL may be for: the one its generic
 * payload names, or those building the repository it names (none: the caller is told the same
 * as for a bad signature).
 */
async function candidatesOf(db: Kysely<Database>, forge: ForgeAdapter, payload: object): Promise<Project[]> {
  const slug = forge.name === 'generic' ? text(payload, 'project') : undefined;
  if (slug !== undefined) {
    const project = await getProjectBySlug(db, slug);
    return project ? [project] : [];
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
  return projectsForRepo(db, urls);
}

/**
 * The one project whose webhook secret verifies the delivery. An unknown project, a project
 * without a secret and a wrong signature get one and the same answer, so that nobody without
 * a secret learns which projects exist (the metric's reason still tells an operator which it
 * was). Several projects verifying it (one repository, one secret) is a 409: only a caller who
 * knows their secret learns of them.
 */
async function authenticate(
  deps: ReceiveDeps,
  forge: ForgeAdapter,
  candidates: readonly Project[],
  request: HookRequest,
): Promise<Project> {
  const verified: Project[] = [];
  let reason = candidates.length === 0 ? 'unknown_project' : 'no_secret';
  for (const project of candidates) {
    const secret = (await hookSecret(deps.db, project.id, deps.sealer)) ?? deps.defaultSecret;
    if (secret === undefined) continue;
    reason = 'bad_signature';
    if ((await forge.verify(request.headers, request.raw!, secret)) === 'ok') verified.push(project);
  }
  if (verified.length === 0) {
    throw new HookError(
      401,
      'unauthorized',
      `the ${signatureHeader(forge)} header does not match the webhook secret of a project this delivery is for (or there is no such project, or it has no webhook secret)`,
      reason,
    );
  }
  if (verified.length > 1) {
    const slugs = verified.map((p) => p.slug);
    throw new HookError(
      409,
      'conflict',
      `several projects build this repository (${slugs.join(', ')}); add ?project=owner/name to the hook URL`,
      'ambiguous_project',
      { projects: slugs },
    );
  }
  return verified[0]!;
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
  // RE2, never RegExp: `(a+)+` and a branch of thirty `a` and a `b` held every request for 24 s.
  // A filter stored before RE2 that RE2 cannot run matches nothing, and the answer says why.
  // (The branch itself is at most 255 characters, the matcher's bound: checkRefs saw to it.)
  const filter = compileUserRegex(project.branchFilter);
  if (!filter.ok) {
    return {
      ignore: `warning: the branch filter "${project.branchFilter}" of ${project.slug} cannot be used, so no push is built until it is changed: ${filter.problem}`,
      reason: 'branch_filter',
    };
  }
  if (!filter.regex.matches(action.branch)) {
    return {
      ignore: `branch "${action.branch}" does not match the branch filter "${project.branchFilter}"`,
      reason: 'branch_filter',
    };
  }
  return { action };
}

/** Refuses names that git would not take as plain refs before anything is recorded as a build. */
function checkRefs(action: Extract<HookAction, { kind: 'build' }>): void {
  const bad = (what: string, value: string, why: string) =>
    new HookError(400, 'invalid_ref', `invalid ${what} ${JSON.stringify(value)}: ${why}`, 'invalid_ref', {
      [what]: value,
    });
  // A tag build's branch is its tag: name it as what it is.
  if (action.tag !== undefined && !isSafeRefName(action.tag))
    throw bad('tag', action.tag, 'not a plain git ref name');
  if (action.branch !== action.tag && !isSafeRefName(action.branch))
    throw bad('branch', action.branch, 'not a plain git ref name');
  if (action.commit !== undefined && !isCommitSha(action.commit))
    throw bad('commit', action.commit, 'not a commit SHA (7 to 64 hexadecimal digits)');
}

async function startBuild(
  deps: ReceiveDeps,
  forge: ForgeAdapter,
  project: Project,
  action: Extract<HookAction, { kind: 'build' }>,
  payload: object,
): Promise<Build> {
  const build = await deps.control.trigger(project, {
    branch: action.branch,
    ...(action.commit !== undefined && { commit: action.commit }),
    ...(action.tag !== undefined && { tag: action.tag }),
    ...payloadCommit(payload, action.commit),
    ...(action.event === 'pull_request' && payloadPullRequest(payload)),
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

/** The forge's signature (or token) header, if the delivery has one. */
function signatureOf(forge: ForgeAdapter, headers: IncomingHttpHeaders): string | undefined {
  return {
    github: () => header(headers, 'x-hub-signature-256'),
    gitlab: () => header(headers, 'x-gitlab-token'),
    gitea: () => header(headers, 'x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature'),
    generic: () => header(headers, 'x-slipway-signature'),
  }[forge.name]();
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
