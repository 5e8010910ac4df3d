/** Durations as the pipeline file writes them (`90s`, `5m`, `1h30m`, or whole seconds). */
import { DURATION_PATTERN } from './schema.js';

/**
 * Upper bound of a step timeout. Also keeps the value well inside what `setTimeout` can wait
 * (about 24.8 days); beyond that Node fires the timer at once.
 */
export const MAX_TIMEOUT_MS = 168 * 3_600_000;

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000 };
const durationRe = new RegExp(DURATION_PATTERN);

/**
 * Milliseconds of a duration written as `90s`, `5m`, `1h`, `1h30m`, `"90"` or `90` (seconds);
 * undefined when it is not one. Zero is a valid duration here; whether it is a valid
 * timeout is for the caller.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value * 1_000 : undefined;
  if (!durationRe.test(value)) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1_000;
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)([hms])/g))
    ms += Number(amount) * (UNIT_MS[unit ?? 's'] ?? 0);
  return ms;
}
