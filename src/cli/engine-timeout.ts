/** `--engine-timeout` / `SLIPWAY_ENGINE_TIMEOUT`, one parser for `doctor`, `server`, `run` and `gc`. */
import { Option } from 'commander';
import { parseDuration } from '../pipeline/duration.js';
import { UsageError } from './errors.js';

export const ENGINE_TIMEOUT_ENV = 'SLIPWAY_ENGINE_TIMEOUT';

/** Above this `setTimeout` fires at once; an hour is already far past any engine worth waiting for. */
const MAX_ENGINE_TIMEOUT_MS = 3_600_000;

/** The option, for every command that talks to a container engine. */
export function engineTimeoutOption(): Option {
  return new Option(
    '--engine-timeout <ms|duration>',
    `docker: how long to wait for each answer of the engine, e.g. 30000 or 1m (env ${ENGINE_TIMEOUT_ENV}; ` +
      'default 5s for each of 3 pings, 30s for its version)',
  );
}

/**
 * The engine timeout from the option, else the environment, as discovery options to spread:
 * `{}` when neither is set. Plain digits are milliseconds (`2500`, also `2500ms`); with a unit
 * it is a duration (`30s`, `2m`, `1m30s`). Anything else is a usage error naming its source.
 */
export function engineTimeoutFrom(
  option: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { engineTimeoutMs?: number } {
  const fromEnv = env[ENGINE_TIMEOUT_ENV];
  const [value, source] =
    option !== undefined
      ? [option, '--engine-timeout']
      : fromEnv !== undefined && fromEnv.trim() !== ''
        ? [fromEnv, ENGINE_TIMEOUT_ENV]
        : [undefined, ''];
  if (value === undefined) return {};
  const ms = parseEngineTimeout(value);
  if (ms === undefined) {
    throw new UsageError(
      `${source} "${value}": expected milliseconds (e.g. 30000) or a duration (e.g. 30s, 2m), ` +
        `from 1 ms to 1h`,
    );
  }
  return { engineTimeoutMs: ms };
}

/** Milliseconds of `2500`, `2500ms`, `30s`, `2m`, `1m30s`; undefined if it is none or out of range. */
export function parseEngineTimeout(value: string): number | undefined {
  const text = value.trim();
  const millis = /^(\d+)(?:ms)?$/.exec(text);
  const ms = millis ? Number(millis[1]) : /[hms]$/.test(text) ? parseDuration(text) : undefined;
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 1 || ms > MAX_ENGINE_TIMEOUT_MS) return undefined;
  return ms;
}
