import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';
import { ADMIN, VIEWER, projectOr404, type App } from '../api/context.js';
import { notFound } from '../api/errors.js';
import { ApiErrorSchema } from '../api/schemas.js';
import {
  addNotifyTarget,
  listNotifyTargets,
  removeNotifyTarget,
  type NotifyTarget,
} from '../notify/targets.js';
import { redactRepoUrl, redactTargetUrl } from '../secrets/repo-credentials.js';
import { refreshScripts } from './scripts.js';
import { getHookSettings, updateHookSettings, type HookSettings, type SecretSealer } from './store.js';

export interface HookSettingsRouteDeps {
  db: Kysely<Database>;
  sealer?: SecretSealer;
  scriptsWorkRoot?: string;
}

const tags = ['webhooks'];
const ProjectParams = Type.Object({ owner: Type.String(), name: Type.String() });
const TargetParams = Type.Object({
  owner: Type.String(),
  name: Type.String(),
  id: Type.Integer({ minimum: 1 }),
});
const Time = Type.String({ format: 'date-time' });

const ScriptsSource = Type.Object({
  repoUrl: Type.String({ minLength: 1, description: 'Git URL of the build-scripts repository' }),
  path: Type.Optional(
    Type.String({ description: 'Folder holding project.json and build.sh; default the root' }),
  ),
  ref: Type.Optional(Type.String({ description: 'Branch to follow; default main' })),
});

const HookSettingsSchema = Type.Object({
  secretSet: Type.Boolean({ description: 'Whether a webhook secret is set (it is never shown)' }),
  buildTags: Type.Boolean(),
  buildPullRequests: Type.Boolean(),
  scripts: Type.Union([
    Type.Object({ repoUrl: Type.String(), path: Type.String(), ref: Type.String() }),
    Type.Null(),
  ]),
  snapshot: Type.Union([
    Type.Object({
      commit: Type.String(),
      refreshedAt: Time,
      descriptor: Type.Record(Type.String(), Type.String()),
    }),
    Type.Null(),
  ]),
});

const HookSettingsPatchSchema = Type.Object(
  {
    secret: Type.Optional(
      Type.Union([Type.String({ minLength: 8, maxLength: 1024 }), Type.Null()], {
        description: 'Key forges sign deliveries with (GitLab: the token); null removes it',
      }),
    ),
    buildTags: Type.Optional(Type.Boolean()),
    buildPullRequests: Type.Optional(Type.Boolean()),
    scripts: Type.Optional(
      Type.Union([ScriptsSource, Type.Null()], {
        description: 'Build-scripts repository, or null for .slipway.yml',
      }),
    ),
  },
  { additionalProperties: false },
);

const EventsSchema = Type.Array(
  Type.Union([Type.Literal('started'), Type.Literal('finished'), Type.Literal('failed')]),
  { minItems: 1 },
);
const NotifyTargetSchema = Type.Object({
  id: Type.Integer(),
  global: Type.Boolean({ description: 'A target for every project' }),
  url: Type.String({
    description: 'Scheme and host only (`https://hooks.slack.com/***`): the URL is a credential',
  }),
  slack: Type.Boolean(),
  events: EventsSchema,
  createdAt: Time,
});
const NotifyTargetCreateSchema = Type.Object(
  {
    url: Type.String({ minLength: 1, description: 'http(s) URL the notices are POSTed to' }),
    slack: Type.Optional(Type.Boolean({ description: 'Post Slack-compatible {text, attachments}' })),
    events: Type.Optional(EventsSchema),
  },
  { additionalProperties: false },
);

/**
 * REST routes for a project's webhook settings, build-scripts repository and notification
 * targets; register them inside the API's `/api/v1` scope (they use its auth and error
 * handling). Reading needs a viewer token, changing an admin token.
 */
export function hookSettingsRoutes(api: App, deps: HookSettingsRouteDeps): void {
  const { db } = deps;

  api.get(
    '/projects/:owner/:name/hooks',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's webhook settings",
        params: ProjectParams,
        response: { 200: HookSettingsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return settingsDto(await getHookSettings(db, project.id));
    },
  );

  api.patch(
    '/projects/:owner/:name/hooks',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Change webhook settings: secret, tag and pull-request builds, build-scripts repository',
        params: ProjectParams,
        body: HookSettingsPatchSchema,
        response: { 200: HookSettingsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const settings = await updateHookSettings(
        db,
        project.id,
        request.body,
        deps.sealer ? { sealer: deps.sealer } : {},
      );
      return settingsDto(settings);
    },
  );

  api.post(
    '/projects/:owner/:name/hooks/scripts/refresh',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Fetch the build-scripts repository now and apply its project.json',
        params: ProjectParams,
        response: { 200: HookSettingsSchema, '4xx': ApiErrorSchema, '5xx': ApiErrorSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      // A HookError (an invalid descriptor, an unreachable repository) is answered as it says.
      await refreshScripts(
        db,
        project,
        deps.scriptsWorkRoot === undefined ? {} : { workRoot: deps.scriptsWorkRoot },
      );
      return settingsDto(await getHookSettings(db, project.id));
    },
  );

  api.get(
    '/projects/:owner/:name/notify-targets',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "Where a project's build notices go (its own and global targets)",
        params: ProjectParams,
        response: { 200: Type.Array(NotifyTargetSchema) },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return (await listNotifyTargets(db, project.id)).map(targetDto);
    },
  );

  api.post(
    '/projects/:owner/:name/notify-targets',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Post build notices of this project to a URL',
        params: ProjectParams,
        body: NotifyTargetCreateSchema,
        response: { 201: NotifyTargetSchema },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const target = await addNotifyTarget(db, { projectId: project.id, ...request.body });
      return reply.code(201).send(targetDto(target));
    },
  );

  api.delete(
    '/projects/:owner/:name/notify-targets/:id',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Stop posting to a target',
        params: TargetParams,
        response: { 204: { type: 'null', description: 'Removed' } },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const target = (await listNotifyTargets(db, project.id)).find(
        (x) => x.id === request.params.id && x.projectId === project.id,
      );
      if (!target || !(await removeNotifyTarget(db, target.id)))
        throw notFound(`notification target ${request.params.id} of ${project.slug}`);
      return reply.code(204).send();
    },
  );
}

function settingsDto(settings: HookSettings) {
  return {
    secretSet: settings.secretSet,
    buildTags: settings.buildTags,
    buildPullRequests: settings.buildPullRequests,
    scripts: settings.scripts && { ...settings.scripts, repoUrl: redactRepoUrl(settings.scripts.repoUrl) },
    snapshot:
      settings.snapshot === null
        ? null
        : {
            commit: settings.snapshot.commit,
            refreshedAt: new Date(settings.snapshot.refreshedAt).toISOString(),
            descriptor: settings.snapshot.descriptor,
          },
  };
}

function targetDto(target: NotifyTarget) {
  return {
    id: target.id,
    global: target.projectId === null,
    // The URL is a bearer credential (Slack, Mattermost): admins replace a target, nobody reads it back.
    url: redactTargetUrl(target.url),
    slack: target.slack,
    events: target.events,
    createdAt: new Date(target.createdAt).toISOString(),
  };
}
