/**
 * Build schedules of a project, as the API shows them (`/projects/{owner}/{name}/schedules`),
 * with the calls that the CLI and the web UI make:
 *   GET    …/schedules                        → Schedule[]    viewer
 *   POST   …/schedules       ScheduleCreate   → 201 Schedule  member
 *   PATCH  …/schedules/{id}  ScheduleUpdate   → Schedule      member
 *   DELETE …/schedules/{id}                   → 204           member
 * A schedule's builds have event `cron` and trigger `schedule`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { literals, nullable } from './dto.js';
import { STATUSES } from './status.js';

const Time = Type.String({ format: 'date-time' });

/** The branch a schedule builds when none is given. */
export const DEFAULT_SCHEDULE_BRANCH = 'main';
export const DEFAULT_SCHEDULE_TIMEZONE = 'UTC';

const CronField = Type.String({
  minLength: 1,
  maxLength: 200,
  description:
    'Five fields (minute hour day-of-month month day-of-week), e.g. `0 3 * * *`, or `@daily`-style alias',
});
const TimezoneField = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'IANA time zone the expression is read in, e.g. `Europe/Berlin`',
});
const BranchField = Type.String({ minLength: 1, maxLength: 255 });
const NameField = Type.String({ minLength: 1, maxLength: 100, description: 'A label for people, one line' });

export const ScheduleSchema = Type.Object(
  {
    id: Type.Integer(),
    project: Type.String({ description: '`owner/name`' }),
    name: nullable(Type.String()),
    cron: Type.String(),
    timezone: Type.String(),
    branch: Type.String(),
    enabled: Type.Boolean(),
    nextRunAt: nullable(Time),
    lastRunAt: nullable(Time),
    lastBuild: nullable(
      Type.Object({ id: Type.Integer(), number: Type.Integer(), status: literals(STATUSES) }),
    ),
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'Schedule' },
);
export type Schedule = Static<typeof ScheduleSchema>;

export const ScheduleCreateSchema = Type.Object(
  {
    cron: CronField,
    timezone: Type.Optional(TimezoneField),
    branch: Type.Optional(BranchField),
    name: Type.Optional(NameField),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: 'ScheduleCreate' },
);
export type ScheduleCreate = Static<typeof ScheduleCreateSchema>;

export const ScheduleUpdateSchema = Type.Object(
  {
    cron: Type.Optional(CronField),
    timezone: Type.Optional(TimezoneField),
    branch: Type.Optional(BranchField),
    name: Type.Optional(nullable(NameField)),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: 'ScheduleUpdate' },
);
export type ScheduleUpdate = Static<typeof ScheduleUpdateSchema>;
