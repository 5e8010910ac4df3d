/**
 * Build schedules: cron expressions per project and branch that start builds with event
 * `cron`. `cron.ts` checks and evaluates expressions, `runner.ts` claims due ticks (once per
 * tick across replicas and restarts), `routes.ts` is the API.
 */
export { checkCron, nextTick, CRON_ALIASES } from './cron.js';
export type { CronCheck, CronProblem } from './cron.js';
export { ScheduleRunner, scheduleLabel } from './runner.js';
export type { ScheduleRunnerDeps, SchedulePass } from './runner.js';
export { registerScheduleRoutes } from './routes.js';
export type { ScheduleRouteDeps } from './routes.js';

/** How often a server looks for due schedules by default (`--schedule-interval`). */
export const DEFAULT_SCHEDULE_INTERVAL_MS = 10_000;
