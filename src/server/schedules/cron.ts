import { Cron } from 'croner';

/**
 * Cron expressions and time zones of schedules, checked and evaluated with `croner`. Only the
 * classic five fields (or an alias such as `@daily`) are accepted, although croner also
 * takes seconds and years: a schedule ticks at most once a minute, and a six-field line
 * pasted from elsewhere would otherwise be read with its fields shifted. croner's own words
 * ("Invalid value for month: 12", counted from 0) are translated into ours, naming the field,
 * its position and what it allows.
 */

/** The five fields in order, with what each allows. */
const FIELDS = [
  { name: 'minute', allows: '0-59' },
  { name: 'hour', allows: '0-23' },
  { name: 'day-of-month', allows: '1-31, L' },
  { name: 'month', allows: '1-12 or JAN-DEC' },
  { name: 'day-of-week', allows: '0-7 or SUN-SAT (0 and 7 are Sunday)' },
] as const;

/** The aliases croner knows, but `@reboot`, which is no time. */
export const CRON_ALIASES = [
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
] as const;

/** Longest expression and time zone name accepted (far beyond any real one). */
export const MAX_CRON_LENGTH = 200;
export const MAX_TIMEZONE_LENGTH = 64;

/** Why an expression or a time zone was refused: the field (`cron`, `timezone`) and words for people. */
export interface CronProblem {
  field: 'cron' | 'timezone';
  message: string;
}

export type CronCheck = { ok: true; cron: string; timezone: string } | { ok: false; problem: CronProblem };

/**
 * Checks a schedule's expression and time zone. On success returns them normalised: the
 * expression trimmed with single spaces, the time zone in its canonical spelling (`utc` →
 * `UTC`). `now` is used to check that the expression matches some date at all
 * (`0 0 30 2 *`, 30 February, never does).
 */
export function checkCron(expression: string, timezone: string, now: number = Date.now()): CronCheck {
  const zone = checkTimezone(timezone);
  if (!zone.ok) return zone;
  const cron = checkExpression(expression);
  if (!cron.ok) return cron;
  if (nextTick(cron.cron, zone.timezone, now) === null) {
    return fail('cron', `"${cron.cron}" matches no date (a day that no month has?)`);
  }
  return { ok: true, cron: cron.cron, timezone: zone.timezone };
}

/**
 * The first tick strictly after `after` (epoch ms), or null when there is none. The
 * expression and time zone must have passed `checkCron`; should croner refuse them anyway
 * (an older row, another croner), the answer is null: the schedule stops, it does not fail
 * every pass.
 */
export function nextTick(cron: string, timezone: string, after: number): number | null {
  try {
    const next = new Cron(cron, { timezone, paused: true }).nextRun(new Date(after));
    return next === null ? null : next.getTime();
  } catch {
    return null;
  }
}

function checkTimezone(
  timezone: string,
): { ok: true; timezone: string } | { ok: false; problem: CronProblem } {
  const name = timezone.trim();
  if (name === '' || name.length > MAX_TIMEZONE_LENGTH) {
    return fail('timezone', 'expected an IANA time zone name such as UTC or Europe/Berlin');
  }
  try {
    const canonical = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    return { ok: true, timezone: canonical };
  } catch {
    return fail(
      'timezone',
      `unknown time zone "${name}": expected an IANA name such as UTC or Europe/Berlin`,
    );
  }
}

function checkExpression(
  expression: string,
): { ok: true; cron: string } | { ok: false; problem: CronProblem } {
  const text = expression.trim();
  if (text.length > MAX_CRON_LENGTH) return fail('cron', `longer than ${MAX_CRON_LENGTH} characters`);
  if (text.startsWith('@')) {
    const alias = text.toLowerCase();
    if (!(CRON_ALIASES as readonly string[]).includes(alias)) {
      return fail('cron', `unknown alias "${text}": expected one of ${CRON_ALIASES.join(', ')}`);
    }
    return { ok: true, cron: alias };
  }
  const parts = [...text.matchAll(/\S+/g)];
  if (parts.length !== FIELDS.length) {
    return fail(
      'cron',
      `expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily, found ${parts.length}${parts.length === 0 ? '' : ` in "${text}"`}`,
    );
  }
  // One field at a time (the others `*`): croner says what is wrong, we say where.
  for (const [i, part] of parts.entries()) {
    const probe = FIELDS.map((_, j) => (j === i ? part[0] : '*')).join(' ');
    const problem = croneRefusal(probe);
    if (problem !== undefined) {
      const field = FIELDS[i]!;
      return fail(
        'cron',
        `field ${i + 1} (${field.name}) "${part[0]}" at column ${expression.indexOf(text) + part.index + 1}: ${explain(problem, field.allows)}`,
      );
    }
  }
  const cron = parts.map((p) => p[0]).join(' ');
  const whole = croneRefusal(cron);
  if (whole !== undefined) return fail('cron', `"${cron}": ${explain(whole, 'a valid cron expression')}`);
  return { ok: true, cron };
}

/** croner's message when it refuses the expression, else undefined. */
function croneRefusal(expression: string): string | undefined {
  try {
    new Cron(expression, { paused: true });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** croner's reason in our words (its values are off by one for months, for example). */
function explain(message: string, allows: string): string {
  if (/Invalid value for/i.test(message)) return `out of range; allowed: ${allows}`;
  if (/illegal characters/i.test(message))
    return `not a value; allowed: ${allows}, *, lists a,b, ranges a-b, steps */n`;
  if (/illegal stepping|step/i.test(message)) return 'a step (/n) must be a whole number from 1';
  if (/larger than to value/i.test(message)) return 'a range must go from the lower to the higher value';
  return `${message.replace(/^CronPattern:\s*/i, '')}; allowed: ${allows}`;
}

function fail(field: CronProblem['field'], message: string): { ok: false; problem: CronProblem } {
  return { ok: false, problem: { field, message } };
}
