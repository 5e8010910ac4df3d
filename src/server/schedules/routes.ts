import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import {
  DEFAULT_SCHEDULE_BRANCH,
  DEFAULT_SCHEDULE_TIMEZONE,
  ScheduleCreateSchema,
  ScheduleSchema,
  ScheduleUpdateSchema,
  type Schedule as ScheduleDto,
} from '../../contract/schedules.js';
import {
  createSchedule,
  deleteSchedule,
  getSchedule,
  listSchedules,
  updateSchedule,
  type Database,
  type Project,
  type Schedule,
  type SchedulePatch,
} from '../../store/index.js';
import { MEMBER, VIEWER, projectOr404, type App } from '../api/context.js';
import { HttpError, notFound } from '../api/errors.js';
import { ApiErrorSchema } from '../api/schemas.js';
import { isSafeRefName } from '../sources/git-checkout.js';
import { checkCron, nextTick } from './cron.js';

export interface ScheduleRouteDeps {
  db: Kysely<Database>;
  /** The clock; tests pass their own. */
  now?: () => number;
}

const tags = ['schedules'];
const ProjectParams = Type.Object({ owner: Type.String(), name: Type.String() });
const ScheduleParams = Type.Object({
  owner: Type.String(),
  name: Type.String(),
  id: Type.Integer({ minimum: 1 }),
});
const errors = { '4xx': ApiErrorSchema };
/** Schedules one project may have: far more than a team uses, far fewer than a flood of builds. */
export const MAX_SCHEDULES_PER_PROJECT = 50;

/**
 * REST routes of a project's schedules, inside the API's `/api/v1` scope. Reading needs a
 * viewer, changing a member (who may trigger builds by hand anyway). A cron expression or
 * time zone that does not parse is a 400 naming the field, and for the expression the
 * field of the five and its column.
 */
export function registerScheduleRoutes(api: App, deps: ScheduleRouteDeps): void {
  const { db } = deps;
  const now = deps.now ?? Date.now;

  api.get(
    '/projects/:owner/:name/schedules',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's schedules, with their next and last tick",
        params: ProjectParams,
        response: { 200: Type.Array(ScheduleSchema), ...errors },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return (await listSchedules(db, project.id)).map((s) => scheduleDto(s, project));
    },
  );

  api.post(
    '/projects/:owner/:name/schedules',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Build a branch on a cron schedule (event `cron`)',
        params: ProjectParams,
        body: ScheduleCreateSchema,
        response: { 201: ScheduleSchema, ...errors },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const body = request.body;
      const at = now();
      const { cron, timezone } = checked(body.cron, body.timezone ?? DEFAULT_SCHEDULE_TIMEZONE, at);
      const branch = checkedBranch(body.branch ?? DEFAULT_SCHEDULE_BRANCH);
      const enabled = body.enabled ?? true;
      if ((await listSchedules(db, project.id)).length >= MAX_SCHEDULES_PER_PROJECT) {
        throw new HttpError(
          409,
          'conflict',
          `${project.slug} has ${MAX_SCHEDULES_PER_PROJECT} schedules, the most a project may have; remove one first`,
        );
      }
      const schedule = await createSchedule(
        db,
        {
          projectId: project.id,
          name: body.name === undefined ? null : checkedName(body.name),
          cron,
          timezone,
          branch,
          enabled,
          nextRunAt: enabled ? nextTick(cron, timezone, at) : null,
        },
        at,
      );
      return reply.code(201).send(scheduleDto(schedule, project));
    },
  );

  api.patch(
    '/projects/:owner/:name/schedules/:id',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Change a schedule: expression, time zone, branch, name, or enable/disable it',
        params: ScheduleParams,
        body: ScheduleUpdateSchema,
        response: { 200: ScheduleSchema, ...errors },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const old = await scheduleOr404(db, project, request.params.id);
      const body = request.body;
      const at = now();
      const patch: SchedulePatch = {};
      if (body.cron !== undefined || body.timezone !== undefined) {
        const { cron, timezone } = checked(body.cron ?? old.cron, body.timezone ?? old.timezone, at);
        patch.cron = cron;
        patch.timezone = timezone;
      }
      if (body.branch !== undefined) patch.branch = checkedBranch(body.branch);
      if (body.name !== undefined) patch.name = body.name === null ? null : checkedName(body.name);
      if (body.enabled !== undefined) patch.enabled = body.enabled;
      const enabled = patch.enabled ?? old.enabled;
      // A new expression, or a schedule enabled again, counts from now: ticks missed while it
      // was off are not made up for.
      const moved = patch.cron !== undefined || (enabled && !old.enabled);
      if (!enabled) patch.nextRunAt = null;
      else if (moved) patch.nextRunAt = nextTick(patch.cron ?? old.cron, patch.timezone ?? old.timezone, at);
      const schedule = await updateSchedule(db, old.id, patch, at);
      if (schedule === undefined) throw notFound(`schedule ${old.id} of ${project.slug}`);
      return scheduleDto(schedule, project);
    },
  );

  api.delete(
    '/projects/:owner/:name/schedules/:id',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Remove a schedule (its builds stay)',
        params: ScheduleParams,
        response: { 204: { type: 'null', description: 'Removed' }, ...errors },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const schedule = await scheduleOr404(db, project, request.params.id);
      if (!(await deleteSchedule(db, schedule.id)))
        throw notFound(`schedule ${schedule.id} of ${project.slug}`);
      return reply.code(204).send();
    },
  );
}

async function scheduleOr404(db: Kysely<Database>, project: Project, id: number): Promise<Schedule> {
  const schedule = await getSchedule(db, id);
  if (schedule === undefined || schedule.projectId !== project.id)
    throw notFound(`schedule ${id} of ${project.slug}`);
  return schedule;
}

function invalid(field: string, message: string): HttpError {
  const path = `body.${field}`;
  return new HttpError(400, 'invalid_request', `${path}: ${message}`, { fields: [{ path, message }] });
}

function checked(cron: string, timezone: string, now: number): { cron: string; timezone: string } {
  const result = checkCron(cron, timezone, now);
  if (!result.ok) throw invalid(result.problem.field, result.problem.message);
  return result;
}

function checkedBranch(branch: string): string {
  if (!isSafeRefName(branch)) throw invalid('branch', `"${branch}" is not a valid branch name`);
  return branch;
}

function checkedName(name: string): string {
  const text = name.trim();
  if (text === '' || /\p{Cc}/u.test(text))
    throw invalid('name', 'expected one line of text without control characters');
  return text;
}

function scheduleDto(schedule: Schedule, project: Project): ScheduleDto {
  const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: schedule.id,
    project: project.slug,
    name: schedule.name,
    cron: schedule.cron,
    timezone: schedule.timezone,
    branch: schedule.branch,
    enabled: schedule.enabled,
    nextRunAt: time(schedule.nextRunAt),
    lastRunAt: time(schedule.lastRunAt),
    lastBuild: schedule.lastBuild,
    createdAt: new Date(schedule.createdAt).toISOString(),
    updatedAt: new Date(schedule.updatedAt).toISOString(),
  };
}
