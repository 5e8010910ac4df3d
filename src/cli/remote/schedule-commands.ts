import { Option, type Command } from 'commander';
import type { Schedule } from '../../contract/schedules.js';
import { EXIT, UsageError } from '../errors.js';
import {
  apiAction,
  client,
  plainTable,
  remote,
  type ConnectionFlags,
  type CommandIo,
} from './command-kit.js';
import { parseSlug } from './commands.js';

interface Flags extends ConnectionFlags {
  branch?: string;
  timezone?: string;
  name?: string;
  disabled?: boolean;
  output?: 'table' | 'json';
}

/**
 * `slipway schedules list|add|rm|enable|disable <owner/name> …`: a project's cron schedules
 * (`/projects/{owner}/{name}/schedules`). Listing needs a viewer token, changes a member's.
 * The expression may be one quoted argument (`"0 3 * * *"`) or its five fields as separate
 * words; the server checks it and says which field is wrong.
 */
export function registerScheduleCommands(
  program: Command,
  exit: (code: number) => void,
  io: CommandIo = process,
): void {
  const action = apiAction(exit, io.stderr);
  const schedules = program
    .command('schedules')
    .alias('schedule')
    .description("list, add, remove, enable or disable a project's cron schedules");

  remote(
    schedules
      .command('list')
      .alias('ls')
      .description('list schedules with their next tick and last build (every role)')
      .argument('<owner/name>')
      .addOption(
        new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
      ),
  ).action(
    action(async (slugArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const list = await client(flags).listSchedules(slug);
      if (flags.output === 'json') io.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.length === 0) io.stderr.write(`no schedules for ${slug}\n`);
      else io.stdout.write(schedulesTable(list));
      return EXIT.ok;
    }),
  );

  remote(
    schedules
      .command('add')
      .description('build a branch on a cron schedule (member): slipway schedules add acme/web "0 3 * * *"')
      .argument('<owner/name>')
      .argument('<cron...>', 'five fields (minute hour day-of-month month day-of-week) or an alias: @daily')
      .option('--branch <branch>', 'branch to build (default main)')
      .option('--timezone <zone>', 'IANA time zone the expression is read in (default UTC)')
      .option('--name <name>', 'a label for people, shown as who triggered the builds')
      .option('--disabled', 'add it switched off'),
  ).action(
    action(async (slugArg: string, words: string[], flags: Flags) => {
      const slug = parseSlug(slugArg);
      const schedule = await client(flags).createSchedule(slug, {
        cron: words.join(' '),
        ...(flags.branch !== undefined ? { branch: flags.branch } : {}),
        ...(flags.timezone !== undefined ? { timezone: flags.timezone } : {}),
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.disabled ? { enabled: false } : {}),
      });
      io.stdout.write(`schedule ${schedule.id} of ${slug} added: ${describe(schedule)}\n`);
      return EXIT.ok;
    }),
  );

  remote(
    schedules
      .command('rm')
      .alias('delete')
      .description('remove a schedule (member); its builds stay')
      .argument('<owner/name>')
      .argument('<id>', 'schedule id (slipway schedules list)'),
  ).action(
    action(async (slugArg: string, idArg: string, flags: Flags) => {
      const slug = parseSlug(slugArg);
      const id = parseId(idArg);
      await client(flags).deleteSchedule(slug, id);
      io.stdout.write(`schedule ${id} of ${slug} removed\n`);
      return EXIT.ok;
    }),
  );

  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    remote(
      schedules
        .command(verb)
        .description(
          enabled
            ? 'switch a schedule on (member); it next runs at its next tick from now'
            : 'switch a schedule off (member)',
        )
        .argument('<owner/name>')
        .argument('<id>', 'schedule id (slipway schedules list)'),
    ).action(
      action(async (slugArg: string, idArg: string, flags: Flags) => {
        const slug = parseSlug(slugArg);
        const schedule = await client(flags).updateSchedule(slug, parseId(idArg), { enabled });
        io.stdout.write(`schedule ${schedule.id} of ${slug} ${verb}d: ${describe(schedule)}\n`);
        return EXIT.ok;
      }),
    );
  }
}

function parseId(text: string): number {
  const id = Number(text.startsWith('#') ? text.slice(1) : text);
  if (!Number.isSafeInteger(id) || id < 1)
    throw new UsageError(`schedule id "${text}": expected a whole number of 1 or more`);
  return id;
}

/** `"0 3 * * *" (Europe/Berlin) on main, next 2026-12-01 02:00 UTC`. */
function describe(schedule: Schedule): string {
  const next = schedule.enabled ? `next ${shortTime(schedule.nextRunAt)}` : 'disabled';
  return `"${schedule.cron}" (${schedule.timezone}) on ${schedule.branch}, ${next}`;
}

/** `2026-12-01 02:00 UTC`, or `-`. */
function shortTime(iso: string | null): string {
  return iso === null ? '-' : `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

function schedulesTable(list: readonly Schedule[]): string {
  return plainTable([
    ['ID', 'NAME', 'BRANCH', 'CRON', 'TIME ZONE', 'ENABLED', 'NEXT (UTC)', 'LAST BUILD'],
    ...list.map((s) => [
      String(s.id),
      s.name ?? '-',
      s.branch,
      s.cron,
      s.timezone,
      s.enabled ? 'yes' : 'no',
      s.nextRunAt === null ? '-' : s.nextRunAt.slice(0, 16).replace('T', ' '),
      s.lastBuild === null ? '-' : `#${s.lastBuild.number} ${s.lastBuild.status}`,
    ]),
  ]);
}
