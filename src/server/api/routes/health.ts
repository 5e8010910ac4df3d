import { Type } from '@sinclair/typebox';
import { pingDatabase } from '../../../store/index.js';
import { PUBLIC } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { HttpError } from '../errors.js';

/** A database that takes longer than this to `select 1` is as good as down for a load balancer. */
const READY_TIMEOUT_MS = 2000;

const tags = ['operations'];
const StatusSchema = Type.Object({ status: Type.String() });

/** Health, readiness and metrics: unauthenticated, for load balancers and Prometheus. */
export function healthRoutes(app: App, { db, metrics }: RouteContext): void {
  app.get(
    '/healthz',
    { config: PUBLIC, schema: { tags, summary: 'The process is alive', response: { 200: StatusSchema } } },
    () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: PUBLIC,
      schema: { tags, summary: 'The database answers (503 otherwise)', response: { 200: StatusSchema } },
    },
    async (request) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)),
          READY_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([pingDatabase(db), timeout]);
      } catch (error) {
        // The driver's words may name hosts and ports: for the log, not for anonymous callers.
        request.log.warn({ err: error }, 'readiness check failed');
        throw new HttpError(503, 'unavailable', 'the database does not answer');
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' };
    },
  );

  app.get(
    '/metrics',
    {
      config: PUBLIC,
      schema: {
        tags,
        summary: 'Prometheus metrics',
        response: {
          200: {
            description: 'Prometheus text format',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.type(contentType).send(body);
    },
  );
}
