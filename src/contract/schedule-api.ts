/**
 * The calls of a project's schedules (shapes in `schedules.ts`). Apart from the schemas so that
 * the web UI takes these without TypeBox.
 */
import { projectPath, type Endpoint } from './api.js';
import type { Schedule, ScheduleCreate, ScheduleUpdate } from './schedules.js';

const schedulesPath = (slug: string) => `${projectPath(slug)}/schedules`;

export const scheduleEndpoints = {
  list: (slug: string): Endpoint<Schedule[]> => ({ method: 'GET', path: schedulesPath(slug) }),
  create: (slug: string, body: ScheduleCreate): Endpoint<Schedule> => ({
    method: 'POST',
    path: schedulesPath(slug),
    body,
  }),
  update: (slug: string, id: number, body: ScheduleUpdate): Endpoint<Schedule> => ({
    method: 'PATCH',
    path: `${schedulesPath(slug)}/${id}`,
    body,
  }),
  remove: (slug: string, id: number): Endpoint<void> => ({
    method: 'DELETE',
    path: `${schedulesPath(slug)}/${id}`,
  }),
} as const;
