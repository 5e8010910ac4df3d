/**
 * Statuses of builds, stages and steps (DESIGN.md "status"):
 * `queued → pending → running → success | failure | error | cancelled | skipped`, plus
 * `waiting` (a stage needing approval) and `lost` (the executor no longer knows the build).
 */

/** Outcomes a run of a step, stage or build can end in (what the orchestrator reports). */
export const FINAL_STATUSES = ['success', 'failure', 'error', 'cancelled', 'skipped'] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/**
 * Statuses of a build that holds its project+branch lock and a lease. `waiting` counts: a
 * build paused for approval keeps its workspace and services, and its branch must not start a
 * second build meanwhile. It holds no running slot, though (see `SLOT_STATUSES` in the store).
 */
export const ACTIVE_STATUSES = ['pending', 'running', 'waiting'] as const;
export type ActiveStatus = (typeof ACTIVE_STATUSES)[number];

/**
 * Statuses a build never leaves: the final outcomes plus `lost`. Nothing about a build in one
 * of them changes any more (the store releases its lease and lock on entering one).
 */
export const TERMINAL_STATUSES = [...FINAL_STATUSES, 'lost'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/** Every status, in the order of a build's life. */
export const STATUSES = ['queued', ...ACTIVE_STATUSES, ...TERMINAL_STATUSES] as const;
export type Status = (typeof STATUSES)[number];

export function isStatus(value: unknown): value is Status {
  return (STATUSES as readonly unknown[]).includes(value);
}

export function isActiveStatus(status: Status): status is ActiveStatus {
  return (ACTIVE_STATUSES as readonly Status[]).includes(status);
}

export function isTerminalStatus(status: Status): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly Status[]).includes(status);
}

export function isFinalStatus(status: Status): status is FinalStatus {
  return (FINAL_STATUSES as readonly Status[]).includes(status);
}
