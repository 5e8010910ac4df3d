import { Type, type Static } from '@sinclair/typebox';
import type { ExecutorPool } from '../../scheduler/executor-pool.js';
import { VIEWER } from '../context.js';
import type { App } from '../context.js';
import type { ExecutorInfo } from '../dto.js';

const ExecutorInfoSchema = Type.Object(
  {
    name: Type.String(),
    usable: Type.Boolean(),
    isDefault: Type.Boolean({ description: "The server's default executor" }),
    detail: Type.String({ description: 'What it is, or why it cannot be used' }),
  },
  { title: 'ExecutorInfo' },
);

// The schema and the DTO must not drift apart.
const same: (a: Static<typeof ExecutorInfoSchema>) => ExecutorInfo = (a) => a;
void same;

/**
 * `GET /executors`: what a project's executor may be set to on this server (the project
 * form offers them), and why the unusable ones are not.
 */
export function executorRoutes(api: App, executors: Pick<ExecutorPool, 'list'>): void {
  api.get(
    '/executors',
    {
      config: VIEWER,
      schema: {
        tags: ['projects'],
        summary: 'The executors of this server, whether each is usable, and which is the default',
        response: { 200: Type.Array(ExecutorInfoSchema) },
      },
    },
    () => executors.list(),
  );
}
