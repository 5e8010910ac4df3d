/**
 * Longest owner, and longest name, of a project (so a slug has at most 129 characters). One
 * limit, checked when a project is created: each part is a path parameter of the API
 * (`/projects/{owner}/{name}`), and the router's limit on those is far above it.
 */
export const MAX_SLUG_PART_LENGTH = 64;

/** `owner/name`: each part a letter or digit, then letters, digits, `.`, `_`, `-`. */
export const SLUG_PATTERN = `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_SLUG_PART_LENGTH - 1}}/[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_SLUG_PART_LENGTH - 1}}$`;

/** What a newer build of a branch does to older ones (see DESIGN.md "Scheduler"). */
export const CONCURRENCY_POLICIES = ['queue', 'supersede'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

/** How a build came to be (`schedule`: a project's schedule, see src/server/schedules). */
export const BUILD_TRIGGERS = ['manual', 'webhook', 'rerun', 'schedule'] as const;
export type BuildTrigger = (typeof BUILD_TRIGGERS)[number];

/** What started a build, as the pipeline's `when.event` names it (`cron`: a schedule's tick). */
export const EVENTS = ['push', 'tag', 'pull_request', 'manual', 'cron'] as const;
export type BuildEvent = (typeof EVENTS)[number];

/** A secret's name as `from_secret` uses it: letters, digits, `_`, `.`, `-`; at most 128 characters. */
export const SECRET_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';
/** Longest secret value in bytes of UTF-8: enough for a key file or a kubeconfig, far from a memory problem. */
export const MAX_SECRET_BYTES = 64 * 1024;
