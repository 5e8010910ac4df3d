/** The variables every step gets from Slipway itself (PIPELINE.md, "Variables"). */
import type { BuildContext } from './types.js';

/** Names of the built-ins, in the order they are exported. */
export const BUILTIN_NAMES = [
  'CI',
  'SLIPWAY',
  'SLIPWAY_BUILD_ID',
  'SLIPWAY_BUILD_NUMBER',
  'SLIPWAY_PROJECT',
  'SLIPWAY_BRANCH',
  'SLIPWAY_TAG',
  'SLIPWAY_COMMIT',
  'SLIPWAY_EVENT',
  'SLIPWAY_STAGE',
  'SLIPWAY_STEP',
  'SLIPWAY_WORKSPACE',
  'BUILD_ID',
  'PROJECT_KEY',
  'BRANCH_TO_BUILD',
] as const;

export type BuiltinName = (typeof BUILTIN_NAMES)[number];

/**
 * The built-ins of one step. Outside steps (services, the top-level image) `stage` and
 * `step` are empty strings, so that a reference to them is not an error there.
 * `SLIPWAY_TAG` is empty for builds of something other than a tag.
 */
export function builtinVariables(ctx: BuildContext, stage = '', step = ''): Record<BuiltinName, string> {
  return {
    CI: 'true',
    SLIPWAY: 'true',
    SLIPWAY_BUILD_ID: ctx.buildId,
    SLIPWAY_BUILD_NUMBER: String(ctx.buildNumber),
    SLIPWAY_PROJECT: ctx.project,
    SLIPWAY_BRANCH: ctx.branch,
    SLIPWAY_TAG: ctx.tag ?? '',
    SLIPWAY_COMMIT: ctx.commit,
    SLIPWAY_EVENT: ctx.event,
    SLIPWAY_STAGE: stage,
    SLIPWAY_STEP: step,
    SLIPWAY_WORKSPACE: ctx.workspace,
    // For build scripts written for older servers.
    BUILD_ID: ctx.buildId,
    PROJECT_KEY: ctx.project,
    BRANCH_TO_BUILD: ctx.branch,
  };
}

/** Whether `name` is one of the built-ins (an env entry of that name replaces it, with a warning). */
export function isBuiltin(name: string): boolean {
  return (BUILTIN_NAMES as readonly string[]).includes(name);
}
