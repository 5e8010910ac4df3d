import { describe, expect, it } from 'vitest';
import { checkCron, nextTick } from './cron.js';

const NOW = Date.parse('2026-03-28T12:00:30Z');

function problem(cron: string, timezone = 'UTC') {
  const result = checkCron(cron, timezone, NOW);
  if (result.ok) throw new Error(`"${cron}" was accepted`);
  return result.problem;
}

describe('checkCron', () => {
  it('accepts five fields and aliases, normalising spaces, alias case and the time zone', () => {
    expect(checkCron('  0  3 * * 1-5 ', 'utc', NOW)).toEqual({
      ok: true,
      cron: '0 3 * * 1-5',
      timezone: 'UTC',
    });
    expect(checkCron('@Daily', 'Europe/Berlin', NOW)).toEqual({
      ok: true,
      cron: '@daily',
      timezone: 'Europe/Berlin',
    });
    expect(checkCron('*/15 8-18 * JAN-MAR MON,FRI', 'America/New_York', NOW).ok).toBe(true);
  });

  it('names the field, its column and what it allows for a value out of range', () => {
    expect(problem('0 25 * * *')).toEqual({
      field: 'cron',
      message: 'field 2 (hour) "25" at column 3: out of range; allowed: 0-23',
    });
    // croner counts months from 0 ("Invalid value for month: 12"): our words say 13 and 1-12.
    expect(problem('0 3 * 13 *').message).toBe(
      'field 4 (month) "13" at column 7: out of range; allowed: 1-12 or JAN-DEC',
    );
    expect(problem('61 * * * *').message).toMatch(/^field 1 \(minute\) "61" at column 1: out of range/);
    expect(problem('0 3 * * 8').message).toMatch(/^field 5 \(day-of-week\) "8" at column 9/);
  });

  it('explains syntax errors: letters, steps, reversed ranges', () => {
    expect(problem('x * * * *').message).toBe(
      'field 1 (minute) "x" at column 1: not a value; allowed: 0-59, *, lists a,b, ranges a-b, steps */n',
    );
    expect(problem('*/0 * * * *').message).toBe(
      'field 1 (minute) "*/0" at column 1: a step (/n) must be a whole number from 1',
    );
    expect(problem('0 5-1 * * *').message).toBe(
      'field 2 (hour) "5-1" at column 3: a range must go from the lower to the higher value',
    );
  });

  it('wants exactly five fields, a known alias, and a date that exists', () => {
    expect(problem('* * *').message).toBe(
      'expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily, found 3 in "* * *"',
    );
    // Six fields would be read by croner with seconds first: refused rather than shifted.
    expect(problem('0 0 3 * * *').message).toMatch(/^expected 5 fields .*found 6/);
    expect(problem('').message).toMatch(/found 0$/);
    expect(problem('@reboot').message).toBe(
      'unknown alias "@reboot": expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly',
    );
    expect(problem('0 0 30 2 *').message).toBe('"0 0 30 2 *" matches no date (a day that no month has?)');
  });

  it('refuses an unknown time zone, naming the field', () => {
    expect(problem('0 3 * * *', 'Mars/Olympus')).toEqual({
      field: 'timezone',
      message: 'unknown time zone "Mars/Olympus": expected an IANA name such as UTC or Europe/Berlin',
    });
    expect(problem('0 3 * * *', ' ').field).toBe('timezone');
  });
});

describe('nextTick', () => {
  it('reads the expression in its time zone, winter and summer time alike', () => {
    // 03:00 in Berlin: 02:00 UTC in winter (CET), 01:00 UTC from the last Sunday of March (CEST).
    expect(new Date(nextTick('0 3 * * *', 'Europe/Berlin', NOW)!).toISOString()).toBe(
      '2026-03-29T01:00:00.000Z',
    );
    const winter = Date.parse('2026-01-10T12:00:00Z');
    expect(new Date(nextTick('0 3 * * *', 'Europe/Berlin', winter)!).toISOString()).toBe(
      '2026-01-11T02:00:00.000Z',
    );
    expect(new Date(nextTick('0 3 * * *', 'UTC', NOW)!).toISOString()).toBe('2026-03-29T03:00:00.000Z');
  });

  it('is strictly after the given time, and null for an expression croner refuses', () => {
    const minute = Date.parse('2026-03-28T12:01:00Z');
    expect(nextTick('* * * * *', 'UTC', minute)).toBe(minute + 60_000);
    expect(nextTick('@hourly', 'UTC', NOW)).toBe(Date.parse('2026-03-28T13:00:00Z'));
    expect(nextTick('not cron', 'UTC', NOW)).toBeNull();
    expect(nextTick('0 0 30 2 *', 'UTC', NOW)).toBeNull();
  });
});
