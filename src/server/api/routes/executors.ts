import { Type } from '@sinclair/typebox';
import type { ExecutorPool } from '../../scheduler/executor-pool.js';
import { VIEWER } from '../context.js';
import type { App } from '../context.js';
import { ExecutorInfoSchema } from '../schemas.js';

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
