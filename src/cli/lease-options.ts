/**
 * `slipway server --lease` / `--reconcile-interval` (env `SLIPWAY_LEASE` /
 * `SLIPWAY_RECONCILE_INTERVAL`): how long a build stays with a replica that stopped renewing it,
 * and how often every replica looks for such builds. A build of a replica that died waits at
 * most about lease + interval before another replica takes it over and re-attaches.
 */
import { MAX_TIMEOUT_MS, parseDuration } from '../pipeline/duration.js';
import { UsageError } from './errors.js';

export const LEASE_ENV = 'SLIPWAY_LEASE';
export const RECONCILE_INTERVAL_ENV = 'SLIPWAY_RECONCILE_INTERVAL';

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_RECONCILE_MS = 15_000;
/**
 * A lease is renewed every third of it: below 2 s a busy machine (an event-loop stall, a slow
 * database answer) could let a live replica's lease run out, and another replica would take
 * over a build that is still being run.
 */
const MIN_LEASE_MS = 2_000;
const MIN_RECONCILE_MS = 1_000;

export interface LeaseSettings {
  leaseMs: number;
  reconcileMs: number;
}

/**
 * The lease and the reconcile interval from the options, else the environment, else the
 * defaults (30 s; 15 s, or half the lease when that is shorter). Durations as `30s`, `2m`,
 * `1m30s` or whole seconds. The interval must be shorter than the lease: a reconcile pass that
 * runs less often than leases expire leaves a dead replica's builds waiting longer than needed.
 * Anything else is a usage error naming its source.
 */
export function leaseSettingsFrom(
  options: { lease?: string | undefined; reconcileInterval?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): LeaseSettings {
  const lease = read('--lease', options.lease, LEASE_ENV, env);
  const interval = read('--reconcile-interval', options.reconcileInterval, RECONCILE_INTERVAL_ENV, env);
  const leaseMs = lease?.ms ?? DEFAULT_LEASE_MS;
  if (lease && lease.ms < MIN_LEASE_MS)
    throw new UsageError(`${lease.source} "${lease.text}": the lease must be at least 2s`);
  if (interval === undefined)
    return { leaseMs, reconcileMs: Math.min(DEFAULT_RECONCILE_MS, Math.floor(leaseMs / 2)) };
  if (interval.ms < MIN_RECONCILE_MS)
    throw new UsageError(`${interval.source} "${interval.text}": the interval must be at least 1s`);
  if (interval.ms >= leaseMs) {
    throw new UsageError(
      `${interval.source} "${interval.text}": the interval must be shorter than the lease ` +
        `(${lease ? `${lease.source} "${lease.text}"` : 'default 30s'})`,
    );
  }
  return { leaseMs, reconcileMs: interval.ms };
}

function read(
  option: string,
  given: string | undefined,
  envName: string,
  env: NodeJS.ProcessEnv,
): { ms: number; text: string; source: string } | undefined {
  const fromEnv = env[envName];
  const [text, source] =
    given !== undefined
      ? [given, option]
      : fromEnv !== undefined && fromEnv.trim() !== ''
        ? [fromEnv, envName]
        : [undefined, ''];
  if (text === undefined) return undefined;
  const ms = parseDuration(text.trim());
  if (ms === undefined || ms > MAX_TIMEOUT_MS)
    throw new UsageError(`${source} "${text}": expected a duration such as 30s, 2m or 1m30s (at most 168h)`);
  return { ms, text, source };
}
