import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import type { Kysely } from 'kysely';
import { getBuild, getProjectBySlug } from '../../store/index.js';
import type { Build, Database, Project } from '../../store/index.js';
import type { LogHub } from '../logs/log-hub.js';
import type { LogStore } from '../logs/types.js';
import type { Metrics } from '../metrics.js';
import type { BuildControl } from '../scheduler/types.js';
import { notFound } from './errors.js';
import type { LiveLogs } from './live/build-feed.js';
import type { CredentialCipher } from '../secrets/repo-credentials.js';

/** The Fastify instance the routes are written against: TypeBox schemas give the handler types. */
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What the routes use; built by `buildApp` from its deps. */
export interface RouteContext {
  db: Kysely<Database>;
  control: BuildControl;
  logs: LogStore;
  hub: LogHub;
  metrics: Metrics;
  live: LiveLogs;
  globalLimit: number;
  /** Seals credentials given in repository URLs; without it they are stored as given (and shown redacted). */
  cipher?: CredentialCipher;
}

/** Route configs: the least role each route needs (see `RouteAuth`). */
export const PUBLIC = { auth: 'public' } as const;
export const VIEWER = { auth: { role: 'viewer' } } as const;
export const MEMBER = { auth: { role: 'member' } } as const;
export const ADMIN = { auth: { role: 'admin' } } as const;

/** The project `owner/name`, or a 404 naming it. */
export async function projectOr404(db: Kysely<Database>, owner: string, name: string): Promise<Project> {
  const slug = `${owner}/${name}`;
  const project = await getProjectBySlug(db, slug);
  if (project === undefined) throw notFound(`project ${slug}`);
  return project;
}

/** The build with global id `id`, or a 404 naming it. */
export async function buildOr404(db: Kysely<Database>, id: number): Promise<Build> {
  const build = await getBuild(db, id);
  if (build === undefined) throw notFound(`build ${id}`);
  return build;
}
