import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { getBuildByNumber, type Database } from '../../store/index.js';
import { EmailDeliverySchema, EmailSettingsSchema, EmailSettingsViewSchema } from '../../contract/email.js';
import {
  getEmailSettings,
  listEmailDeliveries,
  setEmailSettings,
  type EmailDelivery,
  type EmailSettings,
} from '../../store/email.js';
import { ADMIN, VIEWER, projectOr404, type App } from '../api/context.js';
import { ProjectParams } from '../api/schemas.js';

const tags = ['projects'];

/** A project without settings: nothing is mailed until someone says when. */
const NO_SETTINGS: EmailSettings = { when: 'never', toAuthor: true, recipients: [] };

/**
 * `GET|PUT /projects/{owner}/{name}/email` inside the `/api/v1` prefix (a project's e-mail
 * settings; reading needs a viewer, changing an admin) and
 * `GET /projects/{owner}/{name}/email/deliveries[?build=N]`: the latest messages and their
 * outcome, where a refused message shows the SMTP server's answer.
 */
export function registerEmailRoutes(api: App, deps: { db: Kysely<Database>; smtpConfigured: boolean }): void {
  const { db } = deps;
  const view = (settings: EmailSettings) => ({ ...settings, smtpConfigured: deps.smtpConfigured });

  api.get(
    '/projects/:owner/:name/email',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's e-mail notifications",
        params: ProjectParams,
        response: { 200: EmailSettingsViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return view((await getEmailSettings(db, project.id)) ?? NO_SETTINGS);
    },
  );

  api.put(
    '/projects/:owner/:name/email',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: "Set a project's e-mail notifications",
        params: ProjectParams,
        body: EmailSettingsSchema,
        response: { 200: EmailSettingsViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const settings: EmailSettings = {
        when: request.body.when,
        toAuthor: request.body.toAuthor ?? true,
        recipients: [...new Set(request.body.recipients ?? [])],
      };
      await setEmailSettings(db, project.id, settings);
      return view(settings);
    },
  );

  api.get(
    '/projects/:owner/:name/email/deliveries',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "The project's latest e-mail messages and their outcome, newest first",
        params: ProjectParams,
        querystring: Type.Object(
          { build: Type.Optional(Type.Integer({ minimum: 1, description: 'Only this build number' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(EmailDeliverySchema) },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const { build } = request.query;
      const found = build === undefined ? undefined : await getBuildByNumber(db, project.id, build);
      if (build !== undefined && found === undefined) return [];
      const deliveries = await listEmailDeliveries(
        db,
        project.id,
        found === undefined ? {} : { buildId: found.id },
      );
      return deliveries.map(deliveryDto);
    },
  );
}

function deliveryDto(delivery: EmailDelivery) {
  return {
    build: delivery.buildNumber,
    recipients: delivery.recipients,
    subject: delivery.subject,
    outcome: delivery.outcome,
    attempts: delivery.attempts,
    message: delivery.message,
    at: new Date(delivery.createdAt).toISOString(),
  };
}
